export interface CommitQueueOptions<T> {
  /** How long the first item of a group waits for others, in ms. */
  intervalMs: number;
  /** Most items per group; a full group is committed at once. */
  maxItems: number;
  /**
   * Writes one group, items in push order, and resolves with one outcome per item: `undefined`
   * resolves that item's `push`, an error rejects it alone. Rejecting rejects every item of the
   * group with that error. Called for one group at a time.
   */
  commit: (items: T[]) => Promise<(Error | undefined)[]>;
}

interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: collects items and hands them to `commit` in groups, one group at a time. A group
 * is written when its first item has waited `intervalMs`, when `maxItems` are queued, or, for items
 * that arrived during a write, as soon as that write is done.
 */
export class CommitQueue<T> {
  readonly #options: CommitQueueOptions<T>;
  readonly #waiting: Waiting<T>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;

  constructor(options: CommitQueueOptions<T>) {
    this.#options = options;
  }

  /** Queues `item`; resolves once the group holding it has been committed, rejects if that (or its own outcome) failed. */
  push(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#writing !== undefined) return; // the next group starts when this write is done
      if (this.#waiting.length >= this.#options.maxItems) this.#next();
      else this.#timer ??= setTimeout(() => this.#next(), this.#options.intervalMs);
    });
  }

  /** Commits everything queued without waiting for the interval; resolves once nothing is queued or being written. */
  async flush(): Promise<void> {
    this.#next();
    while (this.#writing !== undefined) await this.#writing;
  }

  #next(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#writing !== undefined || this.#waiting.length === 0) return;
    const group = this.#waiting.splice(0, this.#options.maxItems);
    this.#writing = this.#write(group).finally(() => {
      this.#writing = undefined;
      this.#next();
    });
  }

  async #write(group: Waiting<T>[]): Promise<void> {
    let outcomes: (Error | undefined)[];
    try {
      outcomes = await this.#options.commit(group.map((w) => w.item));
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    for (const [i, w] of group.entries()) {
      const err = outcomes[i];
      if (err) w.reject(err);
      else w.resolve();
    }
  }
}
