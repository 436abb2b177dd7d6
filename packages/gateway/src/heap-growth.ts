import { setFlagsFromString } from 'node:v8';

/**
 * How much V8 lets its old generation grow past what the last full GC left alive, in percent. V8's
 * own factor rises to 4x when GCs are rare, as in a drain: the gateway's heap then grew from ~8 to
 * ~30 MB of dead objects before each full GC, and native memory that classic-level and Node's crypto
 * free only when V8 collects the objects holding it waited with them. At 50 the limit is set by
 * V8's minimum step instead (8 MB above what is alive, for a heap this small).
 */
export const heapGrowingPercent = 50;

let set = false;

/**
 * Sets, for the whole process and once, V8's heap growing factor to {@link heapGrowingPercent}: the
 * gateway process's peak memory during a long drain no longer grows with the backlog (see the
 * package README, "Memory of a long drain"). A full GC of a heap this size takes a few milliseconds.
 */
export function limitHeapGrowth(): void {
  if (set) return;
  setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`);
  set = true;
}
