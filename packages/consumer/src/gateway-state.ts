// One gateway's dedupe state: plain JSON, so that any store can keep it. Pure functions only.

/** A clock correction of one boot: the true time at `monotonicMs` since that boot. */
export interface BootCorrection {
  monotonicMs: number;
  trueTime: string;
}

/** A range of seqs that did not arrive, with when it was first seen and what was said about it. */
export interface OpenGap {
  from: number;
  to: number;
  /** When the consumer first saw a seq above it (ms, the consumer's clock). */
  since: number;
  /** True once reported as `not-yet-uploaded`. */
  reported: boolean;
}

/** Dedupe state of one gateway (version 1 of this shape). */
export interface GatewayState {
  v: 1;
  /** Every seq ≤ watermark is settled: delivered, or reported dropped/abandoned. */
  watermark: number;
  /** Seqs delivered above the watermark, as sorted disjoint [from, to] ranges. */
  above: [number, number][];
  /** The ranges between the watermark and the highest seq delivered that did not arrive. */
  gaps: OpenGap[];
  /** Records the gateway said it dropped, ever (the largest `total` of `cache.records-dropped`). */
  droppedTotal: number;
  /** How many of those a gap has been reported as. */
  droppedExplained: number;
  /** Event ids: every id ≤ floor is settled; `recent` holds those above it. */
  eventFloor: number;
  recentEvents: number[];
  /** Corrections per boot id (the latest boots only). */
  boots: Record<string, BootCorrection>;
  /** Seq ranges delivered with an unknown time, per boot without a correction yet. */
  untimed: Record<string, [number, number][]>;
}

export function emptyState(): GatewayState {
  return {
    v: 1,
    watermark: 0,
    above: [],
    gaps: [],
    droppedTotal: 0,
    droppedExplained: 0,
    eventFloor: 0,
    recentEvents: [],
    boots: {},
    untimed: {},
  };
}

/** Adds `seq` to sorted disjoint ranges, merging neighbours. */
export function addToRanges(ranges: [number, number][], from: number, to: number): void {
  let i = 0;
  while (i < ranges.length && (ranges[i] as [number, number])[1] < from - 1) i++;
  let lo = from;
  let hi = to;
  let j = i;
  while (j < ranges.length && (ranges[j] as [number, number])[0] <= to + 1) {
    const r = ranges[j] as [number, number];
    lo = Math.min(lo, r[0]);
    hi = Math.max(hi, r[1]);
    j++;
  }
  ranges.splice(i, j - i, [lo, hi]);
}

export function inRanges(ranges: [number, number][], seq: number): boolean {
  for (const [from, to] of ranges) {
    if (seq < from) return false;
    if (seq <= to) return true;
  }
  return false;
}

/** Moves the watermark over ranges that touch it. */
export function advance(state: GatewayState): void {
  while (state.above.length > 0 && (state.above[0] as [number, number])[0] <= state.watermark + 1) {
    state.watermark = Math.max(state.watermark, (state.above.shift() as [number, number])[1]);
  }
}

/**
 * Recomputes the open gaps from the watermark and the ranges above it, keeping for each the
 * earliest `since` and the `reported` flag of the gaps it overlaps; a new gap gets `now`.
 */
export function refreshGaps(state: GatewayState, now: number): void {
  const gaps: OpenGap[] = [];
  let start = state.watermark + 1;
  for (const [from, to] of state.above) {
    if (from > start) {
      const old = state.gaps.filter((g) => g.from <= from - 1 && g.to >= start);
      gaps.push({
        from: start,
        to: from - 1,
        since: old.length > 0 ? Math.min(...old.map((g) => g.since)) : now,
        reported: old.some((g) => g.reported),
      });
    }
    start = to + 1;
  }
  state.gaps = gaps;
}

/** Settles seqs from..to (reported as dropped or abandoned): they count as arrived. */
export function settle(state: GatewayState, from: number, to: number): void {
  addToRanges(state.above, from, to);
  advance(state);
}

/** Largest number of boot corrections kept per gateway. */
const MAX_BOOTS = 16;

export function rememberBoot(state: GatewayState, bootId: string, correction: BootCorrection): void {
  delete state.boots[bootId];
  state.boots[bootId] = correction;
  const ids = Object.keys(state.boots);
  for (const id of ids.slice(0, Math.max(0, ids.length - MAX_BOOTS))) delete state.boots[id];
}

/** Checks the shape of state read from a store (a corrupted or foreign item is refused, not trusted). */
export function isGatewayState(value: unknown): value is GatewayState {
  if (value === null || typeof value !== 'object') return false;
  const s = value as Partial<GatewayState>;
  return (
    s.v === 1 &&
    Number.isSafeInteger(s.watermark) &&
    Array.isArray(s.above) &&
    Array.isArray(s.gaps) &&
    Array.isArray(s.recentEvents) &&
    typeof s.boots === 'object' &&
    typeof s.untimed === 'object'
  );
}
