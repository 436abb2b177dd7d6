import { type Batch, batchDel, batchPut, type Database } from './database.js';

/** How many idempotency keys are remembered: a device re-sends only its latest messages. */
export const idempotencyKeyLimit = 4096;

/**
 * The idempotency keys of the most recent appends, persisted in the same atomic batch as their
 * records: a message a device re-sends because it never saw our acknowledgement (the gateway died
 * between the synced write and the ACK) is recognised and not stored twice. Keys are HMACs, so the
 * database holds nothing derived from message content that could be matched against a guess.
 */
export class IdempotencyIndex {
  /** Key → arrival number. */
  readonly #keys: Map<string, number>;
  /**
   * The keys in arrival order from `#oldest` on (entries before it are forgotten ones, cut off now
   * and then). Not the Map's own order: a Map whose oldest entries are deleted one by one keeps
   * their holes until it rehashes, and reading its first key skips them all (thousands at the limit).
   */
  #order: string[];
  #oldest = 0;
  #next: number;

  private constructor(entries: [string, number][]) {
    this.#keys = new Map(entries);
    this.#order = entries.map(([key]) => key);
    this.#next = (entries.at(-1)?.[1] ?? 0) + 1;
  }

  /** Reads the stored keys, oldest first. */
  static async load(database: Database): Promise<IdempotencyIndex> {
    const entries = (await database.idempotency.iterator().all()).sort((a, b) => a[1] - b[1]);
    return new IdempotencyIndex(entries);
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /**
   * Adds the keys of the records in `batch` to it (their arrival numbers as JSON, the sublevel's
   * encoding), with deletions of the oldest beyond the limit; call `commit` with the result once
   * the batch is written.
   */
  stage(batch: Batch, keys: string[]): Map<string, number> {
    const staged = new Map<string, number>();
    for (const key of keys) staged.set(key, this.#next + staged.size);
    for (const [key, n] of staged) batchPut(batch, 'idempotency', key, Buffer.from(JSON.stringify(n)));
    const excess = this.#keys.size + staged.size - idempotencyKeyLimit;
    const order = this.#order;
    for (let i = this.#oldest; i < this.#oldest + excess && i < order.length; i++) {
      batchDel(batch, 'idempotency', order[i] as string);
    }
    return staged;
  }

  /** Applies what `stage` wrote, after its batch was written. */
  commit(staged: Map<string, number>): void {
    for (const [key, n] of staged) {
      if (!this.#keys.has(key)) this.#order.push(key);
      this.#keys.set(key, n);
      this.#next = n + 1;
    }
    const order = this.#order;
    while (this.#keys.size > idempotencyKeyLimit) this.#keys.delete(order[this.#oldest++] as string);
    if (this.#oldest >= idempotencyKeyLimit) {
      this.#order = order.slice(this.#oldest);
      this.#oldest = 0;
    }
  }
}
