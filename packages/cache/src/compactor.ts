import type { Logger } from '@attache/core';
import type { DatabaseSession } from './database-session.js';
import { compactionStateKey, compactOutbox } from './maintenance.js';
import { putSealed } from './sealed-store.js';

/** Options of {@link OutboxCompactor}. */
export interface OutboxCompactorOptions {
  session: DatabaseSession;
  log: Logger;
  /** Compact after a drain of at least this many records; 0 = never by itself. */
  compactAfterRecords: number;
  /**
   * During a drain, compact the part already removed after every this many records (0 = never):
   * see {@link OutboxCompactor}.
   */
  compactDrainedEvery: number;
  /** Throws ATTACHE_CACHE_CLOSED unless the cache is open. */
  assertOpen: () => void;
}

/**
 * Gives the space of removed records back: compacts the outbox's key range when asked, and by
 * itself once a drain of at least `compactAfterRecords` has emptied the outbox (see the README,
 * "Compaction"). The time of the last compaction is kept, sealed, in `state`. During a long drain it
 * also compacts the range already removed, every `compactDrainedEvery` records: LevelDB then deletes
 * the table files that range emptied, and with them their memory maps, so the pages a drain has read
 * do not pile up in the gateway's RSS (see the README, "Memory"), and the disk space comes back as
 * the drain goes.
 */
export class OutboxCompactor {
  readonly #options: OutboxCompactorOptions;
  /** Records removed since the last compaction (or open). */
  #removed = 0;
  /** Records removed since the last compaction of the drained range (or open). */
  #sinceStep = 0;
  /** The highest seq removed. */
  #removedUpTo = 0;
  /** The compaction started after (or during) a drain, if one runs. */
  #running: Promise<void> | undefined;
  /** `nextSeq` when `beforeDrain` last started a compaction (0: never since open). */
  #mergedAt = 0;

  /** Assigns the options; no I/O. */
  constructor(options: OutboxCompactorOptions) {
    this.#options = options;
  }

  /** Counts records removed (by an upload); after a drain that empties the outbox, may start a compaction. */
  removed(records: number, upToSeq: number): void {
    this.#removed += records;
    this.#sinceStep += records;
    this.#removedUpTo = Math.max(this.#removedUpTo, upToSeq);
  }

  /**
   * Starts one compaction in the background when due: of the whole outbox once a drain emptied it,
   * of the range removed so far during one. A failure is logged, never thrown.
   */
  compactIfDrained(): void {
    const { compactAfterRecords, compactDrainedEvery, session } = this.#options;
    if (this.#running !== undefined) return;
    const drained = session.backlog.records === 0;
    if (drained && compactAfterRecords > 0 && this.#removed >= compactAfterRecords) {
      void this.#background(this.compact(), 'compacting the cache after a drain failed');
    } else if (!drained && compactDrainedEvery > 0 && this.#sinceStep >= compactDrainedEvery) {
      this.#sinceStep = 0;
      const upTo = this.#removedUpTo;
      const step = session.read((database) => session.guard(compactOutbox(database, upTo), 'compaction'));
      void this.#background(step, 'compacting the drained part of the cache failed');
    }
  }

  /**
   * Before a drain of at least `compactDrainedEvery` records, starts in the background the
   * compaction that the drain's first `compactDrainedEvery` records would start (none when one runs).
   * Every group commit writes the counters and idempotency keys, which sort before the records, so
   * each of LevelDB's newest tables (level 0) spans the whole outbox, and the first compaction that
   * takes them merges every table of the next level too: ~30 MB of a 100,000-record backlog read
   * (and memory-mapped) at once. Before the drain those pages are all the gateway maps; in its middle
   * they came on top of the tables the drain had read (see the README, "Memory"). Once per
   * `compactDrainedEvery` records appended: windows that cannot connect, tried again and again while
   * the link is down, do not rewrite the tables each time. Resolves once the compaction it started
   * (if any) is over; never rejects.
   */
  beforeDrain(): Promise<void> {
    const { compactDrainedEvery, session } = this.#options;
    const { records, nextSeq } = session.backlog;
    if (this.#running !== undefined || compactDrainedEvery === 0) return Promise.resolve();
    if (records < compactDrainedEvery || nextSeq - this.#mergedAt < compactDrainedEvery)
      return Promise.resolve();
    this.#mergedAt = nextSeq;
    this.#sinceStep = 0;
    const upTo = this.#removedUpTo;
    const step = session.read((database) => session.guard(compactOutbox(database, upTo), 'compaction'));
    return this.#background(step, 'compacting the cache before a drain failed');
  }

  /**
   * Runs `compaction` as the one in the background; once it succeeded, checks whether another is due
   * (a failed one is not retried until the next remove, so a full disk does not spin).
   */
  #background(compaction: Promise<void>, failure: string): Promise<void> {
    const { log, assertOpen } = this.#options;
    this.#running = compaction
      .then(
        () => true,
        (err: unknown) => {
          log.error({ err }, failure);
          return false;
        },
      )
      .then((succeeded) => {
        this.#running = undefined;
        try {
          assertOpen();
        } catch {
          return; // closing: no new compaction
        }
        if (succeeded) this.compactIfDrained();
      });
    return this.#running;
  }

  /** Compacts the outbox's key range, then stores the time (see LevelCache.compact). */
  async compact(): Promise<void> {
    const { session, log, assertOpen } = this.#options;
    assertOpen();
    const started = this.#removed;
    await session.read((database) => session.guard(compactOutbox(database), 'compaction'));
    this.#removed -= Math.min(started, this.#removed);
    this.#sinceStep = 0;
    const at = new Date().toISOString();
    // Not setState(): a compaction started by a drain may finish while close() waits for it.
    await session.write((database) =>
      session.guard(putSealed(database, 'state', compactionStateKey, at), 'state'),
    );
    log.info({ records: session.backlog.records }, 'cache outbox compacted');
  }

  /** Resolves once the background compactions, if any, are over. */
  async settled(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }
}
