import { GatewayError, type Logger } from '@attache/core';
import { isDiskFull } from './bounds.js';
import {
  type Backlog,
  type Database,
  type LevelMemory,
  openCache,
  syncedWrite,
  type Writable,
} from './database.js';
import type { DiskReserve } from './disk-reserve.js';
import { logQuarantined, quarantineBatch, type Suspect } from './quarantine.js';
import type { ValueSealer } from './value-sealer.js';

/** Options of {@link DatabaseSession}. */
export interface DatabaseSessionOptions {
  path: string;
  sealer: ValueSealer;
  log: Logger;
  /** LevelDB's write buffer and block cache. */
  memory: LevelMemory;
  /** Called with the stored counters after every (re)open (they are also in `backlog`). */
  onLoad: (backlog: Backlog) => void;
  /** The error to throw when there is no database (closed, or a reopen failed). */
  closedError: () => GatewayError;
  /** Released when the disk is found full, so the database can reopen and drain. */
  reserve: DiskReserve;
  /** Called after the disk was found full and the reserve released. */
  onDiskFull: () => void;
}

/**
 * The open LevelDB database of a cache, its outbox counters, and the discipline around it: writes
 * run one at a time in a chain, reads are tracked so a reopen or close waits for them, and a failed
 * write marks the database for reopening before its next use (see the README, "Reopen after a
 * failed write").
 */
export class DatabaseSession {
  readonly #options: DatabaseSessionOptions;
  readonly #readers = new Set<Promise<unknown>>();
  /** The outbox counters as last committed; set by the writes that change them. */
  backlog: Backlog = { nextSeq: 1, records: 0, bytes: 0, dropped: 0 };
  /** The latest group of appends refused or dropped records, or a write found the disk full. */
  atBound = false;
  /** Outbox records moved to quarantine since this session was made. */
  quarantinedRecords = 0;
  #database: Database | undefined;
  /** Tail of the chain that runs writes one at a time. */
  #writes: Promise<void> = Promise.resolve();
  /** A write failed: the database must be reopened before it is used again. */
  #broken = false;

  /** Assigns the options; no I/O. */
  constructor(options: DatabaseSessionOptions) {
    this.#options = options;
  }

  /** True while the reserve is released: appends wait for disk space (see DiskReserve). */
  get waitingForSpace(): boolean {
    return this.#options.reserve.released;
  }

  /**
   * Opens the database (repairing it if needed) and hands its counters to `onLoad`. When the disk
   * is too full to open it (LevelDB writes a new log and manifest on every open), the reserve is
   * released and the open tried once more.
   */
  async load(): Promise<void> {
    const { path, sealer, log, memory, onLoad } = this.#options;
    const { database, backlog } = await openCache(path, sealer, log, memory).catch(async (err: unknown) => {
      if (!isDiskFull(err) || !(await this.#diskFull())) throw err;
      return openCache(path, sealer, log, memory);
    });
    this.#database = database;
    this.backlog = backlog;
    onLoad(backlog);
  }

  /** Runs a read on the open database; a reopen and `close()` wait for it. */
  async read<T>(fn: (database: Database) => Promise<T>): Promise<T> {
    if (this.#broken) return this.write(fn); // after the reopen
    const run = fn(this.#usable());
    this.#readers.add(run);
    try {
      return await run;
    } finally {
      this.#readers.delete(run);
    }
  }

  /**
   * Runs `fn` after every earlier write has settled, so batches and counters never interleave;
   * reopens the database first when a write has failed.
   */
  write<T>(fn: (database: Database) => Promise<T>): Promise<T> {
    const run = this.#writes.then(async () => {
      if (this.#broken) await this.#reopen();
      return fn(this.#usable());
    });
    this.#writes = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Awaits a write; a failure is logged, marks the database for reopening and becomes
   * ATTACHE_CACHE_FULL when the disk is full (which puts the cache at its bound),
   * ATTACHE_CACHE_WRITE otherwise.
   */
  async guard(write: Promise<void>, what: string): Promise<void> {
    try {
      await write;
    } catch (err) {
      this.#broken = true;
      this.#options.log.error({ err }, `cache write failed (${what})`);
      if (!isDiskFull(err)) {
        throw new GatewayError('ATTACHE_CACHE_WRITE', `cache write failed (${what})`, { cause: err });
      }
      this.atBound = true;
      await this.#diskFull();
      throw new GatewayError('ATTACHE_CACHE_FULL', `the disk is full (${what})`, { cause: err });
    }
  }

  /** Writes `batch` synced (see {@link guard}) and, once it is written, takes `next` as the counters. */
  async commit(batch: Writable, next: Backlog, what: string): Promise<void> {
    await this.guard(batch.write(syncedWrite), what);
    this.backlog = next;
  }

  /** Moves suspects to quarantine, among the writes. A failure is logged: they are found again later. */
  async quarantine(suspects: Suspect[]): Promise<void> {
    if (suspects.length === 0) return;
    await this.write((database) => this.quarantineIn(database, suspects)).catch((err: unknown) => {
      this.#options.log.error({ err }, 'moving values that failed authentication to quarantine failed');
    });
  }

  /** Moves suspects to quarantine in one synced batch; runs inside a write. */
  async quarantineIn(database: Database, suspects: Suspect[]): Promise<void> {
    if (suspects.length === 0) return;
    const moved = await quarantineBatch(database, this.backlog, suspects);
    if (!moved) return;
    await this.commit(moved.batch, moved.next, `quarantine of ${moved.moved.length} values`);
    this.quarantinedRecords += moved.moved.filter((s) => s.sublevel === 'outbox').length;
    for (const suspect of moved.moved) {
      const outcome = suspect.sublevel === 'outbox' ? 'removed from the outbox' : 'reads as missing';
      logQuarantined(this.#options.log, suspect, outcome);
    }
  }

  /** Waits for the writes and reads in flight, then closes the database. */
  async close(): Promise<void> {
    try {
      await this.#writes;
      await Promise.allSettled(this.#readers);
      await this.#database?.db.close();
    } finally {
      this.#database = undefined;
      this.#broken = false;
    }
  }

  /** Releases the reserve and says so; resolves whether there was one to release. */
  async #diskFull(): Promise<boolean> {
    const released = await this.#options.reserve.release();
    this.#options.onDiskFull();
    return released;
  }

  #usable(): Database {
    if (!this.#database) throw this.#options.closedError();
    return this.#database;
  }

  /**
   * After a failed write, LevelDB's log may end in a torn record while LevelDB goes on appending
   * behind it: once the disk has room again, later synced writes succeed, yet recovery after a crash
   * drops them with the torn block. Reopening first moves what is stored into a table and starts a
   * new log. Runs among the writes, once the reads in flight are done.
   */
  async #reopen(): Promise<void> {
    const { log } = this.#options;
    await Promise.allSettled(this.#readers);
    const broken = this.#database;
    this.#database = undefined;
    await broken?.db.close().catch((err: unknown) => log.error({ err }, 'closing the cache failed'));
    try {
      await this.load();
    } catch (err) {
      log.error({ err }, 'reopening the cache after a write failure failed');
      throw err;
    }
    this.#broken = false;
    log.warn('cache reopened after a write failure');
  }
}
