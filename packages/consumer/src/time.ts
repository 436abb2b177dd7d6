import type { BootCorrection } from './gateway-state.js';
import type { ClockProvenance } from './generated/batch.js';

/**
 * Where a record's `time` comes from. `device`: the gateway's clock was synchronized at capture.
 * `corrected`: it was not, and a `clock.corrected` of the same boot placed it. `unknown`: it was not,
 * and no correction of that boot has arrived (yet): `time` is the gateway's unsynchronized clock.
 */
export type TimeSource = 'device' | 'corrected' | 'unknown';

export interface TimedAt {
  time: string;
  timeSource: TimeSource;
}

/** trueTime − (correction.monotonicMs − clock.monotonicMs), the formula of docs/topics.md. */
export function applyCorrection(clock: ClockProvenance, correction: BootCorrection): string {
  return new Date(
    Date.parse(correction.trueTime) - (correction.monotonicMs - clock.monotonicMs),
  ).toISOString();
}

/** The best time of something the gateway stamped `at` with `clock`, given the boot's correction if any. */
export function timeOf(at: string, clock: ClockProvenance, correction: BootCorrection | undefined): TimedAt {
  if (clock.synchronized) return { time: at, timeSource: 'device' };
  if (correction) return { time: applyCorrection(clock, correction), timeSource: 'corrected' };
  return { time: at, timeSource: 'unknown' };
}
