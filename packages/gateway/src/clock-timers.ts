// Repeating timers and the window scheduler's clock on an injectable `Clock` (`@attache/core`), so
// that tests advance a ManualClock instead of waiting for real intervals.
import type { Clock, ClockTimer } from '@attache/core';
import type { SchedulerClock } from '@attache/uplink/policy';

/**
 * Calls `fn` every `ms` on `clock` until cancelled. `fn` is not awaited: work that may outlast `ms`
 * chains itself (as the event monitor's polls do).
 */
export function every(clock: Clock, ms: number, fn: () => void): ClockTimer {
  let timer: ClockTimer;
  const tick = () => {
    timer = clock.setTimeout(tick, ms);
    fn();
  };
  timer = clock.setTimeout(tick, ms);
  // The timer set last: cancelling it from within `fn` stops the next call too.
  return { cancel: () => timer.cancel() };
}

/** `clock` as the window scheduler of `@attache/uplink` takes it. */
export function schedulerClock(clock: Clock): SchedulerClock {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (handle) => (handle as ClockTimer).cancel(),
  };
}
