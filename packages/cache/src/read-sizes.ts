/** How many sizes are kept at most: far more than a window keeps in flight (~300 records a batch). */
const defaultCapacity = 20_000;

/**
 * The JSON size (UTF-8 bytes) of the records `read()` handed out, by seq, so that `remove()` can keep
 * the outbox's byte count without reading every value again. Bounded: a seq has one slot (seq modulo
 * `capacity`), so a size is forgotten when the size of a seq `capacity` apart is noted, and a size
 * that is not known is read from the database instead. Two typed arrays, made at the first note: no
 * allocation per record. A seq's record never changes while it is stored, so a size noted once stays
 * true until it is removed.
 */
export class ReadSizes {
  readonly #capacity: number;
  /** The seq held by each slot; 0 for none (seqs start at 1). */
  #seqs: Float64Array | undefined;
  #bytes: Uint32Array | undefined;
  #size = 0;

  constructor(capacity = defaultCapacity) {
    this.#capacity = capacity;
  }

  /** Notes that record `seq` holds `bytes` bytes of JSON. */
  note(seq: number, bytes: number): void {
    if (this.#seqs === undefined || this.#bytes === undefined) {
      this.#seqs = new Float64Array(this.#capacity);
      this.#bytes = new Uint32Array(this.#capacity);
    }
    const slot = seq % this.#capacity;
    if (this.#seqs[slot] === 0) this.#size++;
    this.#seqs[slot] = seq;
    this.#bytes[slot] = bytes;
  }

  /** The size noted for `seq` (forgotten now), undefined when none is. */
  take(seq: number): number | undefined {
    const slot = seq % this.#capacity;
    if (this.#seqs?.[slot] !== seq) return undefined;
    this.#seqs[slot] = 0;
    this.#size--;
    return this.#bytes?.[slot];
  }

  /** Forgets every size (after a repair or a restore, the database may hold other records). */
  clear(): void {
    this.#seqs?.fill(0);
    this.#size = 0;
  }

  /** How many sizes are noted. */
  get size(): number {
    return this.#size;
  }
}
