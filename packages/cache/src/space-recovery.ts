import type { Logger } from '@attache/core';
import type { DatabaseSession } from './database-session.js';
import type { DiskReserve } from './disk-reserve.js';
import { compactOutbox } from './maintenance.js';

/** Options of {@link SpaceRecovery}. */
export interface SpaceRecoveryOptions {
  reserve: DiskReserve;
  session: DatabaseSession;
  log: Logger;
  /** How often, in ms, free space is checked while the reserve is released. */
  checkMs: number;
}

/**
 * Brings a cache back from a full disk by itself: while the reserve is released it checks the free
 * space every `checkMs` (someone deleted a file) and after every drain (whose deleted records it
 * compacts first, since LevelDB frees their space only then), and makes the reserve again as soon as
 * there is room; appends are accepted from then on.
 */
export class SpaceRecovery {
  readonly #options: SpaceRecoveryOptions;
  #timer: NodeJS.Timeout | undefined;
  /** The check (or compaction and check) in progress. */
  #running: Promise<void> | undefined;
  /** Records up to this seq were removed while released and are not compacted yet. */
  #drainedUpTo = 0;
  /** Bytes of the records removed since the last compaction. */
  #drainedBytes = 0;

  /** Assigns the options; no I/O. */
  constructor(options: SpaceRecoveryOptions) {
    this.#options = options;
  }

  /** Starts checking every `checkMs` while the reserve is released. */
  watch(): void {
    if (this.#timer !== undefined || !this.#options.reserve.released) return;
    this.#timer = setInterval(() => this.#run(), this.#options.checkMs);
    this.#timer.unref();
  }

  /**
   * Records up to `lastSeq`, `bytes` of them, were removed: while released, once they add up to a
   * quarter of the reserve or the outbox is empty, compacts them away, then checks (compacting after
   * every upload batch would slow the drain down to a crawl).
   */
  drained(lastSeq: number, bytes: number): void {
    const { reserve, session } = this.#options;
    if (!reserve.released) return;
    this.#drainedUpTo = Math.max(this.#drainedUpTo, lastSeq);
    this.#drainedBytes += bytes;
    if (this.#drainedBytes < reserve.bytes / 4 && session.backlog.records > 0) return;
    this.#drainedBytes = 0;
    this.#run();
  }

  /** Stops checking and waits for a check in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /**
   * Compacts what was drained, then makes one attempt to make the reserve, unless that runs already
   * (a drain meanwhile runs it again once it is over).
   */
  #run(): void {
    if (this.#running !== undefined) return;
    const { log } = this.#options;
    this.#running = this.#attempt()
      .catch((err: unknown) => log.error({ err }, 'freeing space in the cache failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#drainedUpTo > 0 && this.#timer !== undefined) this.#run();
      });
  }

  async #attempt(): Promise<void> {
    const { reserve, session, log } = this.#options;
    const upTo = this.#drainedUpTo;
    this.#drainedUpTo = 0;
    if (upTo > 0 && reserve.released) {
      await session.read((database) => session.guard(compactOutbox(database, upTo), 'compaction'));
    }
    if (!reserve.released || !(await reserve.acquire())) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    session.atBound = false;
    log.info({ records: session.backlog.records }, 'disk space is back: accepting readings again');
  }
}
