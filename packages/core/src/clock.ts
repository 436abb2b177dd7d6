import type { Clock } from './session.js';

/**
 * CLOCK_MONOTONIC in milliseconds: time since boot, unaffected by wall-clock steps (NTP, a Pi
 * that boots in 1970). Node's hrtime reads CLOCK_MONOTONIC on Linux.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** The real clock: `Date.now()`, CLOCK_MONOTONIC and unref'd Node timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs,
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};
