/** Digits of an outbox key: `Number.MAX_SAFE_INTEGER` has 16, so every safe seq fits and keys sort numerically. */
const width = 16;

/** The outbox key of `seq`: decimal, zero-padded to a fixed width. */
export function seqKey(seq: number): string {
  return String(seq).padStart(width, '0');
}

/** The seq of an outbox key. */
export function parseSeqKey(key: string): number {
  return Number(key);
}

/** True when `value` is an integer from 1 to `Number.MAX_SAFE_INTEGER`. */
export function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}
