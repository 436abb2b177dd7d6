/**
 * mulberry32: a small seeded PRNG, so that a failing crash run's timing can be replayed with its
 * seed (`ATTACHE_CRASH_SEED`). Returns numbers in [0, 1).
 */
export function seededRandom(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
