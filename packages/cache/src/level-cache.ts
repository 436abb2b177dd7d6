import {
  type AttacheRecord,
  type BacklogStats,
  GatewayError,
  isGatewayError,
  type Logger,
  nullLogger,
  type Outbox,
  type PageOptions,
  type PatientTokenizer,
  type RecordDraft,
  type RecordPage,
  type StoredRecord,
} from '@attache/core';
import { AppendWriter } from './append-writer.js';
import { type CacheHealth, type CacheLimits, noLimits } from './bounds.js';
import {
  type AppendOptions,
  defaultBlockCacheBytes,
  defaultWriteBufferBytes,
  type LevelCacheOptions,
} from './cache-options.js';
import { checkKey, checkOptions, checkPageOptions, checkReadOptions } from './checks.js';
import { CommitQueue } from './commit-queue.js';
import { OutboxCompactor } from './compactor.js';
import { type Database, removeBatch, type SeqRange } from './database.js';
import { DatabaseSession } from './database-session.js';
import { DiskReserve } from './disk-reserve.js';
import { expireStep, expiryBatchRecords } from './expiry.js';
import { compactionStateKey, planRestore } from './maintenance.js';
import { OpenState } from './open-state.js';
import { ReadSizes } from './read-sizes.js';
import {
  backlogStats,
  firstRecord,
  getSealed,
  PageBuffers,
  PageBuilder,
  putSealed,
  type RecordSink,
  readRecords,
} from './sealed-store.js';
import { isSeq } from './seq-key.js';
import { SpaceRecovery } from './space-recovery.js';
import { TokenTable } from './token-table.js';
import { ValueSealer } from './value-sealer.js';

/**
 * The gateway's durable outbox on LevelDB: records with per-gateway sequence numbers, appended in
 * group commits; the patient token table; small state values. See the package README for the key
 * layout and what is durable when. One process at a time: LevelDB locks the directory.
 */
export class LevelCache implements Outbox, PatientTokenizer {
  readonly #log: Logger;
  readonly #limits: CacheLimits;
  readonly #session: DatabaseSession;
  readonly #appends: AppendWriter;
  readonly #tokens: TokenTable;
  readonly #compactor: OutboxCompactor;
  readonly #state: OpenState;
  readonly #reserve: DiskReserve;
  readonly #recovery: SpaceRecovery;
  /** Seq where `expire()` starts: the records below it are kept by expiry (see ExpiryPlan). */
  #expiryFrom = 1;
  /** The JSON size of records handed out by read(), for remove(). */
  readonly #sizes = new ReadSizes();
  /**
   * Records dropped and quarantined when `#sizes` was last checked: a drop or a quarantine deletes
   * records whose sizes may be noted, so the sizes are forgotten before the next remove uses them.
   */
  #sizesChecked = { dropped: 0, quarantined: 0 };
  /** Removes group themselves like appends: those that arrive during a write share the next one. */
  readonly #removals = new CommitQueue<SeqRange>({
    intervalMs: 0,
    maxItems: 64,
    commit: (ranges) => this.#removeRanges(ranges),
  });
  /** Buffers of the pages handed out and released, for the next pages. */
  readonly #pageBuffers = new PageBuffers();
  /** The page after the last one `readPage` handed out, read ahead (see {@link ReadAhead}). */
  #ahead: ReadAhead | undefined;
  /**
   * Bumped by whatever may make a page read ahead wrong: a restore, a reload or repair, a remove
   * reaching past the last page handed out. (Drops and expiry show in `backlog.dropped`; appends only
   * add seqs after every stored one.)
   */
  #aheadEpoch = 0;
  /** The last seq of the last page `readPage` handed out: a page read ahead starts after it. */
  #handedOut = 0;
  /** What health() last read from the database. */
  #health: Pick<CacheHealth, 'quarantined' | 'lastCompactionAt'> = { quarantined: 0, lastCompactionAt: null };

  /** Validates and keeps the options; no I/O. Throws a TypeError naming a bad option. */
  constructor(options: LevelCacheOptions) {
    checkOptions(options);
    const closedError = () =>
      new GatewayError('ATTACHE_CACHE_CLOSED', `the cache at ${options.path} is not open`);
    this.#state = new OpenState(closedError);
    const sealer = new ValueSealer(options.keyring);
    const log = (options.logger ?? nullLogger).child({ module: 'cache' });
    this.#log = log;
    this.#limits = options.limits ? { ...options.limits } : noLimits;
    const reserve = new DiskReserve({ dir: options.path, bytes: options.reserveBytes ?? 0, log });
    this.#reserve = reserve;
    const session = new DatabaseSession({
      path: options.path,
      sealer,
      log,
      memory: {
        writeBufferBytes: options.writeBufferBytes ?? defaultWriteBufferBytes,
        blockCacheBytes: options.blockCacheBytes ?? defaultBlockCacheBytes,
      },
      closedError,
      onLoad: () => {
        this.#expiryFrom = 1; // a repair may bring back records below it
        this.#sizes.clear();
        this.#aheadEpoch++;
      },
      reserve,
      onDiskFull: () => this.#recovery.watch(),
    });
    this.#session = session;
    const checkMs = options.reserveCheckMs ?? 5000;
    this.#recovery = new SpaceRecovery({ reserve, session, log, checkMs });
    this.#appends = new AppendWriter({
      session,
      sealer,
      log,
      limits: this.#limits,
      commitIntervalMs: options.commitIntervalMs ?? 0,
      clock: options.clock,
      maxBatchRecords: options.maxBatchRecords ?? 1000,
    });
    const assertOpen = () => this.#state.assertOpen();
    this.#tokens = new TokenTable({ session, sealer, log, assertOpen });
    const compactAfterRecords = options.compactAfterRecords ?? 10_000;
    this.#compactor = new OutboxCompactor({
      session,
      log,
      compactAfterRecords,
      compactDrainedEvery: options.compactDrainedEvery ?? 10_000,
      assertOpen,
    });
  }

  /**
   * Opens the database, creating it if missing; after a crash LevelDB replays its log, a corrupt
   * database is repaired once. Rejects ATTACHE_CACHE_LOCKED when another process (or instance) holds
   * it, ATTACHE_CACHE_WRITE when it cannot be opened otherwise. While open or opening, returns the
   * same promise; while closing, rejects ATTACHE_CACHE_CLOSED.
   */
  open(): Promise<void> {
    return this.#state.open(() => this.#open());
  }

  /**
   * Stops accepting calls (they reject ATTACHE_CACHE_CLOSED), commits the appends already queued,
   * waits for the operations in flight, then closes the database. Resolves at once when closed.
   */
  close(): Promise<void> {
    return this.#state.close(() => this.#close());
  }

  /**
   * Gives the draft the next seq and stores it. Resolves with the full record only after the synced
   * write that holds it (shared with the appends of its group). Rejects ATTACHE_MALFORMED (with
   * `issues`) when the draft does not satisfy record.schema.json; ATTACHE_CACHE_FULL when it would
   * exceed a bound under `refuse` (or alone exceeds maxBytes), nothing stored and no seq used, the
   * rest of its group unaffected; ATTACHE_CACHE_FULL (cause = the LevelDB error) when the disk is
   * full and ATTACHE_CACHE_WRITE when the write fails otherwise, and then nothing of its group is
   * stored and no seq is used up; ATTACHE_CACHE_CLOSED when not open. Under `drop-oldest` it resolves
   * after the oldest records were dropped to make room, in the same write. Do not modify the draft
   * until the promise settles. With `idempotencyKey`, a draft whose key was stored among the last
   * 4,096 keyed appends is not stored again: it resolves `undefined` (the key is kept, as an HMAC,
   * in the same write as its record).
   */
  append(draft: RecordDraft): Promise<AttacheRecord>;
  append(draft: RecordDraft, options: AppendOptions): Promise<AttacheRecord | undefined>;
  async append(draft: RecordDraft, options: AppendOptions = {}): Promise<AttacheRecord | undefined> {
    this.#assertOpen();
    if (this.#reserve.released) {
      throw new GatewayError('ATTACHE_CACHE_FULL', 'the disk is full: readings wait until space returns');
    }
    return this.#appends.append(draft, options.idempotencyKey);
  }

  /**
   * Appends the drafts of one device message all or none (an HL7 message with several patients):
   * one seq each, in order, in one synced write, resolving with each record once written. A draft
   * whose `idempotencyKeys[i]` was stored among the recent keyed appends is left out (undefined in
   * the result), as with `append`. Rejects as `append` does, and then none of them is stored: when
   * one does not satisfy the schema (ATTACHE_MALFORMED, nothing queued) or would exceed a bound
   * under `refuse` (ATTACHE_CACHE_FULL). Under `drop-oldest`, making room may drop any older record,
   * these included, as it does for `append`.
   */
  async appendAll(
    drafts: RecordDraft[],
    options: { idempotencyKeys?: readonly (string | undefined)[] } = {},
  ): Promise<(AttacheRecord | undefined)[]> {
    this.#assertOpen();
    if (this.#reserve.released) {
      throw new GatewayError('ATTACHE_CACHE_FULL', 'the disk is full: readings wait until space returns');
    }
    return this.#appends.appendAll(drafts, options.idempotencyKeys);
  }

  /**
   * Records with seq > `afterSeq` in seq order, decrypted: at most `limit`, at most `maxBytes` bytes
   * of JSON (UTF-8) in all, but at least one when any is stored. A record that fails authentication
   * is skipped and moved to quarantine before this resolves. Rejects ATTACHE_CACHE_CLOSED when not open.
   */
  async read(options: { afterSeq: number; limit: number; maxBytes: number }): Promise<StoredRecord[]> {
    checkReadOptions(options);
    const records: StoredRecord[] = [];
    await this.#readInto(options, 0, (seq, plain) => records.push({ seq, json: plain.toString('utf8') }));
    return records;
  }

  /**
   * The records `read` would return, as one page: their JSON joined by commas in one buffer of at
   * most `maxBytes` (commas included; at least one record when any is stored); null when none is.
   * With `room`, the buffer has that many spaces before and after the JSON (see `RecordPage`), so
   * the reader can write its message's header and end in place. Rejects as `read`.
   */
  async readPage(options: PageOptions): Promise<RecordPage | null> {
    checkPageOptions(options);
    const page = (await this.#takeAhead(options)) ?? (await this.#readJoined(options));
    // The next page is read now, while this one crosses to the window and goes out: the window asks
    // for it next. A drop, expiry, restore, reload or a remove past this page discards it.
    if (page !== null) this.#handedOut = page.lastSeq;
    if (page !== null && this.#state.isOpen) {
      const next = { ...options, afterSeq: page.lastSeq };
      const read = this.#readJoined(next);
      read.catch(() => {}); // a failure is the next call's to meet again, reading afresh
      this.#ahead = { ...next, epoch: this.#aheadEpoch, dropped: this.#session.backlog.dropped, read };
    }
    return page;
  }

  /** The page read ahead for `options`, when it is still true and holds records; else null. */
  async #takeAhead(options: PageOptions): Promise<RecordPage | null> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    if (ahead === undefined || !this.#aheadHolds(ahead, options)) return null;
    const page = await ahead.read.catch(() => null);
    // Read again when it was empty (records may have been stored since) or was overtaken meanwhile.
    return page !== null && this.#aheadHolds(ahead, options) ? page : null;
  }

  #aheadHolds(ahead: ReadAhead, options: PageOptions): boolean {
    return (
      ahead.afterSeq === options.afterSeq &&
      ahead.limit === options.limit &&
      ahead.maxBytes === options.maxBytes &&
      ahead.room?.before === options.room?.before &&
      ahead.room?.after === options.room?.after &&
      ahead.epoch === this.#aheadEpoch &&
      ahead.dropped === this.#session.backlog.dropped
    );
  }

  async #readJoined(options: PageOptions): Promise<RecordPage | null> {
    // Sized for the page expected (it grows past that when needed), never more than 1 MiB up front.
    const expected = Math.min(options.maxBytes, options.limit * (this.#averageBytes() + 1), 2 ** 20);
    const builder = new PageBuilder(expected, options.room, this.#pageBuffers);
    await this.#readInto(options, 1, builder.add);
    return builder.page();
  }

  /** Reads records into `sink` (see readRecords), then moves those that failed authentication to quarantine. */
  async #readInto(
    options: { afterSeq: number; limit: number; maxBytes: number },
    separatorBytes: number,
    sink: RecordSink,
  ): Promise<void> {
    const hints = { sizes: this.#sizes, averageBytes: this.#averageBytes(), separatorBytes };
    const { suspects } = await this.#read((database) => readRecords(database, options, hints, sink));
    await this.#session.quarantine(suspects);
  }

  /**
   * Deletes the records with `firstSeq <= seq <= lastSeq` in one synced write (shared with the
   * removes that arrive while another is being written); seqs not stored are ignored. Rejects ATTACHE_CACHE_WRITE when the write fails (nothing is deleted then),
   * ATTACHE_CACHE_CLOSED when not open.
   */
  async remove(firstSeq: number, lastSeq: number): Promise<void> {
    if (!isSeq(firstSeq)) throw new TypeError('"firstSeq" must be an integer >= 1');
    if (!isSeq(lastSeq) || lastSeq < firstSeq) {
      throw new TypeError('"lastSeq" must be an integer >= "firstSeq"');
    }
    this.#assertOpen();
    if (lastSeq > this.#handedOut) this.#aheadEpoch++;
    await this.#removals.push({ firstSeq, lastSeq });
    if (this.#state.isOpen) this.#compactor.compactIfDrained();
  }

  /** Deletes the records of `ranges` (the removes that arrived together) in one synced write. */
  async #removeRanges(ranges: SeqRange[]): Promise<undefined[]> {
    const removeRange = () =>
      this.#write(async (database) => {
        const session = this.#session;
        this.#checkSizes();
        const removal = await removeBatch(database, session.backlog, ranges, this.#sizes);
        if (!removal) return;
        await session.commit(removal.batch, removal.next, `remove of ${removal.records} records`);
        session.atBound = false;
        this.#compactor.removed(removal.records, Math.max(...ranges.map((r) => r.lastSeq)));
        this.#recovery.drained(Math.max(...ranges.map((r) => r.lastSeq)), removal.bytes);
      });
    // On a full disk a background compaction of LevelDB's may fail first and fail every write after
    // it until a reopen; the deletion itself needs little room, so it is tried once more, reopened.
    await removeRange().catch((err: unknown) => {
      if (!isGatewayError(err, 'ATTACHE_CACHE_FULL')) throw err;
      return removeRange();
    });
    return ranges.map(() => undefined);
  }

  /** Forgets the sizes noted when records were dropped or quarantined since the last check. */
  #checkSizes(): void {
    const dropped = this.#session.backlog.dropped;
    const quarantined = this.#session.quarantinedRecords;
    const checked = this.#sizesChecked;
    if (checked.dropped === dropped && checked.quarantined === quarantined) return;
    this.#sizes.clear();
    this.#sizesChecked = { dropped, quarantined };
  }

  /**
   * Tells the cache a drain is about to start (a window opens): with a backlog of at least
   * `compactDrainedEvery` records, the compaction its first records would start runs now, in the
   * background, so that the newest tables are merged while the drain has read nothing (see the
   * README, "Memory"); once per `compactDrainedEvery` records appended, so windows retried while
   * the link is down do not rewrite the tables each time. Resolves once that compaction is over (at
   * once when none started); a failure is logged, never thrown; nothing when the cache is not open.
   */
  beforeDrain(): Promise<void> {
    return this.#state.isOpen ? this.#compactor.beforeDrain() : Promise.resolve();
  }

  /**
   * Compacts the outbox's key range so the space of removed records is given back (LevelDB would
   * otherwise keep them and their tombstones until its own compactions reach them), then stores the
   * time, which `health()` reports as `lastCompactionAt`. Runs beside appends and reads. Rejects
   * ATTACHE_CACHE_WRITE when LevelDB fails (ATTACHE_CACHE_FULL on a full disk), ATTACHE_CACHE_CLOSED
   * when not open.
   */
  compact(): Promise<void> {
    return this.#compactor.compact();
  }

  /**
   * Stores records that already have their seq (records exported from this gateway's cache, see
   * `importExport`) under that seq, in one synced write, and raises `nextSeq` above them. Seqs
   * already waiting are left as they are. Bounds are not applied: the records were accepted once.
   * Resolves with how many were stored and skipped. Rejects ATTACHE_MALFORMED (nothing stored) when
   * a record does not satisfy record.schema.json, ATTACHE_CACHE_FULL on a full disk,
   * ATTACHE_CACHE_WRITE when the write fails, ATTACHE_CACHE_CLOSED when not open.
   */
  async restore(records: AttacheRecord[]): Promise<{ stored: number; skipped: number }> {
    if (!Array.isArray(records)) throw new TypeError('"records" must be an array of records');
    this.#assertOpen();
    return this.#write(async (database) => {
      const plan = await planRestore(database, this.#session.backlog, records);
      this.#sizes.clear(); // a restored seq may have been read (and its size noted) before
      if (plan.batch) await this.#session.commit(plan.batch, plan.next, `restore of ${plan.stored} records`);
      // A restored record keeps its seq and capture time: expiry walks from the lowest one again.
      for (const { seq } of records) if (seq < this.#expiryFrom) this.#expiryFrom = seq;
      this.#aheadEpoch++; // and may fall within a page read ahead before it was stored
      return { stored: plan.stored, skipped: plan.skipped };
    });
  }

  /**
   * The patient's random token, `pt_` + 26 characters of `[a-z2-7]`; the same id gets the same token
   * forever. A new token is stored with a synced write before this resolves; concurrent calls for the
   * same id share it. Rejects ATTACHE_CACHE_WRITE when it cannot be stored, ATTACHE_CACHE_CLOSED
   * when not open.
   */
  token(patientId: string): Promise<string> {
    if (typeof patientId !== 'string' || patientId === '') {
      return Promise.reject(new TypeError('"patientId" must be a non-empty string'));
    }
    return this.#tokens.token(patientId);
  }

  /** The backlog waiting in the outbox. Rejects ATTACHE_CACHE_CLOSED when not open. */
  async stats(): Promise<BacklogStats> {
    this.#assertOpen();
    // Among the writes, so the counters match the records.
    return this.#write(async (database) => {
      const { first, suspects } = await firstRecord(database);
      await this.#session.quarantineIn(database, suspects);
      return backlogStats(database, this.#session.backlog, first);
    });
  }

  /**
   * How many values failed authentication and were moved to quarantine, ever (they are kept there
   * for forensics). Rejects ATTACHE_CACHE_CLOSED when not open.
   */
  async quarantineCount(): Promise<number> {
    return this.#read(async ({ quarantine }) => (await quarantine.keys().all()).length);
  }

  /**
   * Drops, durably, the records captured more than `limits.maxAgeMs` before `now` (ms since the
   * epoch), walking from the oldest seq and stopping at the first younger record, in synced batches
   * of at most 10,000 that also count them in `dropped`; each batch is logged at warn (count and seq
   * range). Records whose clock was not synchronized are kept (and passed over once per open).
   * Resolves with how many were dropped: at once with 0 when there is no age limit, after reading one
   * record when the oldest is young enough. Rejects ATTACHE_CACHE_WRITE (or ATTACHE_CACHE_FULL on a full disk) when a write fails,
   * ATTACHE_CACHE_CLOSED when not open.
   */
  async expire(now: number = Date.now()): Promise<{ dropped: number }> {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('"now" must be a time in ms');
    this.#assertOpen();
    const { maxAgeMs } = this.#limits;
    if (maxAgeMs === 0) return { dropped: 0 };
    let dropped = 0;
    for (;;) {
      const step = await this.#write((database) =>
        expireStep(this.#session, database, {
          cutoffMs: now - maxAgeMs,
          fromSeq: this.#expiryFrom,
          log: this.#log,
          why: `captured more than ${maxAgeMs} ms ago`,
        }),
      );
      this.#expiryFrom = step.resumeSeq;
      dropped += step.dropped;
      if (step.dropped < expiryBatchRecords) return { dropped };
    }
  }

  /**
   * True while an append would be refused under `whenFull: 'refuse'`: the outbox holds maxRecords or
   * maxBytes, or the latest group was refused or found the disk full (until records are removed or
   * expired). Synchronous, for protocols that can say "busy" before a device sends (ASTM NAKs its ENQ).
   */
  get refusing(): boolean {
    return this.#reserve.released || (this.#limits.whenFull === 'refuse' && this.#atBound());
  }

  /** At a bound now, or waiting for disk space (see CacheHealth.full). */
  #atBound(): boolean {
    const { records, bytes } = this.#session.backlog;
    const { maxRecords, maxBytes } = this.#limits;
    return this.#session.atBound || this.#reserve.released || records >= maxRecords || bytes >= maxBytes;
  }

  /** Dropped and quarantined counts, whether at a bound now. Rejects ATTACHE_CACHE_CLOSED when not open. */
  async health(): Promise<CacheHealth> {
    this.#assertOpen();
    const { dropped } = this.#session.backlog;
    try {
      this.#health.quarantined = await this.quarantineCount();
      this.#health.lastCompactionAt = (await this.getState<string>(compactionStateKey)) ?? null;
    } catch (err) {
      // e.g. a reopen after a failed write finds the disk still full: report what is known.
      this.#log.warn({ err }, 'cache health read failed: reporting the last known counts');
    }
    return { dropped, ...this.#health, full: this.#atBound() };
  }

  /**
   * The JSON value stored under `key`, undefined when there is none, or when it fails
   * authentication (it is then quarantined). Rejects ATTACHE_CACHE_CLOSED when not open.
   */
  async getState<T>(key: string): Promise<T | undefined> {
    checkKey('key', key);
    const { value, suspect } = await this.#read((database) => getSealed<T>(database, 'state', key));
    await this.#session.quarantine(suspect ? [suspect] : []);
    return value;
  }

  /**
   * Stores a JSON-serializable `value` under `key` with a synced write. Rejects ATTACHE_CACHE_WRITE
   * when the write fails, ATTACHE_CACHE_CLOSED when not open.
   */
  async setState(key: string, value: unknown): Promise<void> {
    checkKey('key', key);
    if (value === undefined) throw new TypeError('"value" must be a JSON value, not undefined');
    this.#assertOpen();
    await this.#write((database) => this.#session.guard(putSealed(database, 'state', key, value), 'state'));
  }

  async #open(): Promise<void> {
    await this.#session.load();
    await this.#appends.load();
    if (!(await this.#reserve.acquire())) {
      this.#log.warn('too little disk space for the disk reserve: readings wait until space returns');
      this.#recovery.watch();
    }
    const { records, nextSeq } = this.#session.backlog;
    this.#log.info({ records, nextSeq }, 'cache opened');
  }

  async #close(): Promise<void> {
    await this.#recovery.stop();
    await this.#appends.flush();
    await this.#removals.flush();
    await this.#compactor.settled();
    await this.#session.close();
    const { records, nextSeq } = this.#session.backlog;
    this.#log.info({ records, nextSeq }, 'cache closed');
  }

  /** The mean JSON size of the records waiting (512 when there are none). */
  #averageBytes(): number {
    const { records, bytes } = this.#session.backlog;
    return records > 0 ? bytes / records : 512;
  }

  /** Throws ATTACHE_CACHE_CLOSED unless open (not opening, not closing). */
  #assertOpen(): void {
    this.#state.assertOpen();
  }

  /** Runs a read on the open database (see DatabaseSession.read). */
  #read<T>(fn: (database: Database) => Promise<T>): Promise<T> {
    this.#assertOpen();
    return this.#session.read(fn);
  }

  /** Runs a write among the others (see DatabaseSession.write); queued appends still run while closing. */
  #write<T>(fn: (database: Database) => Promise<T>): Promise<T> {
    return this.#session.write(fn);
  }
}

/**
 * A page `readPage` read ahead: the options it was read with, and the state it was read in. It is
 * handed out only to the call that asks for exactly these options while that state holds.
 */
interface ReadAhead extends PageOptions {
  epoch: number;
  dropped: number;
  read: Promise<RecordPage | null>;
}
