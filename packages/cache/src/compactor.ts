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
  /** Throws ATTACHE_CACHE_CLOSED unless the cache is open. */
  assertOpen: () => void;
}

/**
 * Gives the space of removed records back: compacts the outbox's key range when asked, and by
 * itself once a drain of at least `compactAfterRecords` has emptied the outbox (see the README,
 * "Compaction"). The time of the last compaction is kept, sealed, in `state`.
 */
export class OutboxCompactor {
  readonly #options: OutboxCompactorOptions;
  /** Records removed since the last compaction (or open). */
  #removed = 0;
  /** The compaction started after a drain, if one runs. */
  #running: Promise<void> | undefined;

  /** Assigns the options; no I/O. */
  constructor(options: OutboxCompactorOptions) {
    this.#options = options;
  }

  /** Counts records removed (by an upload); after a drain that empties the outbox, may start a compaction. */
  removed(records: number): void {
    this.#removed += records;
  }

  /** Starts one compaction in the background when due; a failure is logged, never thrown. */
  compactIfDrained(): void {
    const { compactAfterRecords, session, log } = this.#options;
    const due = compactAfterRecords > 0 && this.#removed >= compactAfterRecords;
    if (!due || session.backlog.records > 0 || this.#running !== undefined) return;
    this.#running = this.compact()
      .catch((err: unknown) => log.error({ err }, 'compacting the cache after a drain failed'))
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Compacts the outbox's key range, then stores the time (see LevelCache.compact). */
  async compact(): Promise<void> {
    const { session, log, assertOpen } = this.#options;
    assertOpen();
    const started = this.#removed;
    await session.read((database) => session.guard(compactOutbox(database), 'compaction'));
    this.#removed -= Math.min(started, this.#removed);
    const at = new Date().toISOString();
    // Not setState(): a compaction started by a drain may finish while close() waits for it.
    await session.write((database) =>
      session.guard(putSealed(database, 'state', compactionStateKey, at), 'state'),
    );
    log.info({ records: session.backlog.records }, 'cache outbox compacted');
  }

  /** Resolves once the background compaction, if any, is over; the count starts again from 0. */
  async settled(): Promise<void> {
    await this.#running;
  }
}
