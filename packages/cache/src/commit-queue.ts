import type { Clock } from '@attache/core';

export interface CommitQueueOptions<T> {
  /**
   * How long the first item reaching an idle queue waits for others, in ms. 0 (the default of the
   * cache): it is written at once, and only items that arrive while a write is in flight are grouped.
   */
  intervalMs: number;
  /** Most items per group; a full group is committed at once. */
  maxItems: number;
  /**
   * Writes one group, items in push order, and resolves with one outcome per item: `undefined`
   * resolves that item's `push`, an error rejects it alone. Rejecting rejects every item of the
   * group with that error. Called for one group at a time.
   */
  commit: (items: T[]) => Promise<(Error | undefined)[]>;
  /** Sets the `intervalMs` timer; tests pass a ManualClock. Default: Node's timers (they keep the process alive). */
  clock?: Pick<Clock, 'setTimeout'>;
}

interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
  /** On the first item of a `pushAll`: how many items, this one included, go into the same group. */
  unit?: number;
}

/** Node's timers, kept referenced: a queued append keeps the process alive until it is written. */
const nodeTimers: Pick<Clock, 'setTimeout'> = {
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * Group commit: collects items and hands them to `commit` in groups, one group at a time. An item
 * reaching an idle queue is written at once (with `intervalMs` 0: in the same turn of the event loop,
 * with the items pushed alongside it); items that arrive during a write wait for it and are written
 * together as soon as it is done, up to `maxItems` a group. So a lone reading costs one synced write
 * and no wait, and the writes group themselves only under concurrency.
 */
export class CommitQueue<T> {
  readonly #options: CommitQueueOptions<T>;
  readonly #clock: Pick<Clock, 'setTimeout'>;
  readonly #waiting: Waiting<T>[] = [];
  #timer: { cancel(): void } | undefined;
  /** A write is queued as a microtask. */
  #scheduled = false;
  #writing: Promise<void> | undefined;

  constructor(options: CommitQueueOptions<T>) {
    this.#options = options;
    this.#clock = options.clock ?? nodeTimers;
  }

  /** Queues `item`; resolves once the group holding it has been committed, rejects if that (or its own outcome) failed. */
  push(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#writing !== undefined || this.#scheduled) return; // the next group starts when this write is done
      if (this.#waiting.length >= this.#options.maxItems) this.#next();
      else if (this.#options.intervalMs === 0) this.#soon();
      else this.#timer ??= this.#clock.setTimeout(() => this.#next(), this.#options.intervalMs);
    });
  }

  /**
   * Queues `items` to be committed in one group (never split, even beyond `maxItems`); resolves once
   * that group has been committed, rejects with the first of their outcomes that failed.
   */
  pushAll(items: T[]): Promise<void> {
    return new Promise((resolve, reject) => {
      let left = items.length;
      const done = () => {
        if (--left === 0) resolve();
      };
      const start = this.#waiting.length;
      for (const item of items) this.#waiting.push({ item, resolve: done, reject });
      const first = this.#waiting[start];
      if (first === undefined) return resolve();
      first.unit = items.length;
      if (this.#writing !== undefined || this.#scheduled) return;
      if (this.#waiting.length >= this.#options.maxItems) this.#next();
      else if (this.#options.intervalMs === 0) this.#soon();
      else this.#timer ??= this.#clock.setTimeout(() => this.#next(), this.#options.intervalMs);
    });
  }

  /** Commits everything queued without waiting for the interval; resolves once nothing is queued or being written. */
  async flush(): Promise<void> {
    this.#next();
    while (this.#writing !== undefined) await this.#writing;
  }

  /** Starts a write after the current synchronous code, so the items it pushes join this group. */
  #soon(): void {
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#next();
    });
  }

  #next(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#writing !== undefined || this.#waiting.length === 0) return;
    let count = this.#options.maxItems;
    // A pushAll's items stay together: the group ends after the last of them.
    for (let i = 0; i < count && i < this.#waiting.length; i++)
      count = Math.max(count, i + (this.#waiting[i]?.unit ?? 0));
    const group = this.#waiting.splice(0, count);
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
