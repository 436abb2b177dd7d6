/**
 * CLOCK_MONOTONIC in milliseconds: time since boot, unaffected by wall-clock steps (NTP, a Pi
 * that boots in 1970). Node's hrtime reads CLOCK_MONOTONIC on Linux.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}
