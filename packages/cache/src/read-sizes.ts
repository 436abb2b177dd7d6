/** How many sizes are kept at most: far more than a window keeps in flight (~300 records a batch). */
const defaultCapacity = 20_000;

/**
 * The JSON size (UTF-8 bytes) of the records `read()` handed out, by seq, so that `remove()` can keep
 * the outbox's byte count without reading every value again, and, when every seq of a range has a
 * size, delete the range's keys without looking them up (they are all stored). Bounded: a seq has one
 * slot (seq modulo `capacity`), so a size is forgotten when the size of a seq `capacity` later is
 * noted, and a size that is not known is read from the database instead. Two typed arrays, made at
 * the first note: no allocation per record. A seq's record never changes while it is stored, so a
 * size noted once stays true until it is removed.
 *
 * A read runs beside removes, and may have started before a remove of a seq it then notes (its
 * LevelDB snapshot still holds the record). So a remove leaves a mark in the seq's slot (the seq,
 * negated) that no note of that seq or an earlier one passes, and a size noted by a read that
 * started before the last {@link clear} is not kept (see {@link generation}).
 */
export class ReadSizes {
  readonly #capacity: number;
  /** The seq held by each slot: its size is noted (> 0), it was removed (< 0), or none (0; seqs start at 1). */
  #seqs: Float64Array | undefined;
  #bytes: Uint32Array | undefined;
  #size = 0;
  #generation = 0;

  constructor(capacity = defaultCapacity) {
    this.#capacity = capacity;
  }

  /** Bumped by every {@link clear}: a read passes the value it started with to {@link note}. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Notes that record `seq` holds `bytes` bytes of JSON, as read by a read that started at
   * `generation` (ignored when sizes were cleared since, or when the slot holds a later seq or the
   * mark of a remove of this seq or a later one).
   */
  note(seq: number, bytes: number, generation = this.#generation): void {
    if (generation !== this.#generation) return;
    const [seqs, sizes] = this.#slots();
    const slot = seq % this.#capacity;
    const held = seqs[slot] as number;
    if (held !== seq && held !== 0 && Math.abs(held) >= seq) return;
    if (held <= 0) this.#size++;
    seqs[slot] = seq;
    sizes[slot] = bytes;
  }

  /** The two arrays, made at the first note or take. */
  #slots(): [Float64Array, Uint32Array] {
    if (this.#seqs === undefined || this.#bytes === undefined) {
      this.#seqs = new Float64Array(this.#capacity);
      this.#bytes = new Uint32Array(this.#capacity);
    }
    return [this.#seqs, this.#bytes];
  }

  /** True when a size is noted for `seq`. */
  has(seq: number): boolean {
    return this.#seqs?.[seq % this.#capacity] === seq;
  }

  /**
   * The size noted for `seq`, undefined when none is; either way the slot is marked removed (for a
   * seq that is being removed), unless it holds a later seq.
   */
  take(seq: number): number | undefined {
    const [seqs, sizes] = this.#slots();
    const slot = seq % this.#capacity;
    const held = seqs[slot] as number;
    if (held === seq) {
      seqs[slot] = -seq;
      this.#size--;
      return sizes[slot];
    }
    if (Math.abs(held) < seq) {
      if (held > 0) this.#size--;
      seqs[slot] = -seq;
    }
    return undefined;
  }

  /** Forgets every size (after a repair, a restore or a drop, the database may hold other records). */
  clear(): void {
    this.#seqs?.fill(0);
    this.#size = 0;
    this.#generation++;
  }

  /** How many sizes are noted. */
  get size(): number {
    return this.#size;
  }
}
