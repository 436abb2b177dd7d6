import t from 'tap';
import { isoTime } from '../src/iso-time.js';

/** What the record's `capturedAt` was before: `Date#toISOString`, or the error it throws. */
function reference(ms: number): string {
  try {
    return new Date(ms).toISOString();
  } catch (err) {
    return `throws ${(err as Error).name}`;
  }
}

function actual(ms: number): string {
  try {
    return isoTime(ms);
  } catch (err) {
    return `throws ${(err as Error).name}`;
  }
}

t.test('capturedAt is Date#toISOString of the arrival, whatever came before it', async (t) => {
  const now = Date.UTC(2026, 11, 5, 13, 59, 59, 990);
  const times: number[] = [];
  // Every ms across two second boundaries, in order (the cached second reused, then replaced).
  for (let ms = now - 20; ms < now + 1030; ms++) times.push(ms);
  // Back in time, the epoch and before it, leap days, the ends of what a Date can show and beyond.
  times.push(now - 1500, now, 0, -0, -1, -999, -1000, -1001, Date.UTC(2024, 1, 29, 23, 59, 59, 999));
  times.push(Date.UTC(2024, 1, 29, 23, 59, 59, 5), Date.UTC(1969, 11, 31, 23, 59, 59, 9));
  times.push(Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1, 0, 0, 0, 7));
  times.push(Date.UTC(-1, 0, 1, 0, 0, 0, 8), 8.64e15, -8.64e15, 8.64e15 + 1, Number.NaN, Infinity);
  // Fractions of a ms are dropped as a Date drops them, also within the cached second.
  times.push(now + 0.5, now + 1.999, now - 0.25, now + 0.25);
  for (let seed = 1, i = 0; i < 2000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    times.push(now + (seed % 5000) - 2500);
  }
  const wrong = times.filter((ms) => actual(ms) !== reference(ms));
  t.same(wrong.slice(0, 5), [], `all ${times.length} times as Date#toISOString gives them`);
});
