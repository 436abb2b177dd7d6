/** How many sizes are kept at most: far more than a window keeps in flight (~300 records a batch). */
const defaultCapacity = 20_000;

/**
 * The JSON size (UTF-8 bytes) of the records `read()` handed out, by seq, so that `remove()` can keep
 * the outbox's byte count without reading every value again. Bounded: past `capacity` the oldest
 * entries are forgotten, and a size that is not known is read from the database instead. A seq's
 * record never changes while it is stored, so a size noted once stays true until it is removed.
 */
export class ReadSizes {
  readonly #sizes = new Map<number, number>();
  readonly #capacity: number;

  constructor(capacity = defaultCapacity) {
    this.#capacity = capacity;
  }

  /** Notes that record `seq` holds `bytes` bytes of JSON. */
  note(seq: number, bytes: number): void {
    const sizes = this.#sizes;
    sizes.set(seq, bytes);
    while (sizes.size > this.#capacity) sizes.delete(sizes.keys().next().value as number);
  }

  /** The size noted for `seq` (forgotten now), undefined when none is. */
  take(seq: number): number | undefined {
    const bytes = this.#sizes.get(seq);
    if (bytes !== undefined) this.#sizes.delete(seq);
    return bytes;
  }

  /** Forgets every size (after a repair or a restore, the database may hold other records). */
  clear(): void {
    this.#sizes.clear();
  }

  /** How many sizes are noted. */
  get size(): number {
    return this.#sizes.size;
  }
}
