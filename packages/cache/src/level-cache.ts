import {
  type AttacheRecord,
  type BacklogStats,
  GatewayError,
  type Logger,
  nullLogger,
  type Outbox,
  type PatientTokenizer,
  type RecordDraft,
  type StoredRecord,
} from '@attache/core';
import { type CacheHealth, type CacheLimits, logDropped, noLimits, planAppend } from './bounds.js';
import { checkKey, checkOptions, checkReadOptions, recordOf } from './checks.js';
import { CommitQueue } from './commit-queue.js';
import { type Backlog, type Database, removeBatch, type TokenEntry } from './database.js';
import { DatabaseSession } from './database-session.js';
import { expireBatch, expiryBatchRecords } from './expiry.js';
import { IdempotencyIndex } from './idempotency.js';
import type { CacheKeyring } from './keyring.js';
import { compactionStateKey, compactOutbox, planRestore } from './maintenance.js';
import { newPatientToken } from './patient-token.js';
import { logQuarantined, quarantineBatch, type Suspect } from './quarantine.js';
import { backlogStats, firstRecord, getSealed, putSealed, readRecords } from './sealed-store.js';
import { isSeq } from './seq-key.js';
import { ValueSealer } from './value-sealer.js';

/** Options of {@link LevelCache}. */
export interface LevelCacheOptions {
  /** Directory of the LevelDB database; created if missing. */
  path: string;
  /** The keys that seal every stored value (see {@link loadOrCreateKeyring}); new values use `currentId`. */
  keyring: CacheKeyring;
  /** Group commit window in ms (default 5): appends arriving within it share one synced write. */
  commitIntervalMs?: number;
  /** Most records per synced write (default 1000). */
  maxBatchRecords?: number;
  /** Where the cache logs (default nullLogger). Never receives patient data. */
  logger?: Logger;
  /** Bounds of the outbox (see the README, "Bounds"). Default: none. */
  limits?: CacheLimits;
  /**
   * When `remove()` empties the outbox and at least this many records were removed since the last
   * compaction (or open), the outbox's key range is compacted in the background (default 10,000;
   * 0 = never by itself, call `compact()`).
   */
  compactAfterRecords?: number;
}

type State = 'closed' | 'opening' | 'open' | 'closing';

/** Options of {@link LevelCache.append}. */
export interface AppendOptions {
  /**
   * Identifies the reading across re-sends by its device (e.g. a hash of the message): a reading
   * whose key was stored recently is not stored again.
   */
  idempotencyKey?: string;
}

/** How many patients' tokens are kept in memory (the most recently used). */
const recentTokenLimit = 1024;

/**
 * The gateway's durable outbox on LevelDB: records with per-gateway sequence numbers, appended in
 * group commits; the patient token table; small state values. See the package README for the key
 * layout and what is durable when. One process at a time: LevelDB locks the directory.
 */
export class LevelCache implements Outbox, PatientTokenizer {
  readonly #path: string;
  readonly #log: Logger;
  readonly #limits: CacheLimits;
  readonly #sealer: ValueSealer;
  readonly #queue: CommitQueue<AttacheRecord>;
  readonly #session: DatabaseSession;
  readonly #tokenCalls = new Map<string, Promise<string>>();
  /** Recently used tokens by table key (the HMAC, never the identifier): most readings are of a patient already seen. */
  readonly #recentTokens = new Map<string, string>();
  readonly #compactAfter: number;
  /** The HMAC of each queued record's idempotency key. */
  readonly #keyOf = new WeakMap<AttacheRecord, string>();
  /** Appends with an idempotency key not yet committed, by key: a second one waits for the first. */
  readonly #pendingKeys = new Map<string, Promise<void>>();
  #idempotency: IdempotencyIndex | undefined;
  #state: State = 'closed';
  #opening: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** The outbox counters as last committed. */
  #backlog: Backlog = { nextSeq: 1, records: 0, bytes: 0, dropped: 0 };
  /** The latest group of appends refused or dropped records, or a write found the disk full. */
  #atBound = false;
  /** Seq where `expire()` starts: the records below it are kept by expiry (see ExpiryPlan). */
  #expiryFrom = 1;
  /** Records removed since the last compaction (or open). */
  #removedSinceCompaction = 0;
  /** What health() last read from the database. */
  #health: Pick<CacheHealth, 'quarantined' | 'lastCompactionAt'> = { quarantined: 0, lastCompactionAt: null };
  /** The compaction started after a drain, if one runs. */
  #compacting: Promise<void> | undefined;

  /** Validates and keeps the options; no I/O. Throws a TypeError naming a bad option. */
  constructor(options: LevelCacheOptions) {
    checkOptions(options);
    this.#path = options.path;
    this.#sealer = new ValueSealer(options.keyring);
    this.#log = (options.logger ?? nullLogger).child({ module: 'cache' });
    this.#limits = options.limits ? { ...options.limits } : noLimits;
    this.#compactAfter = options.compactAfterRecords ?? 10_000;
    this.#session = new DatabaseSession({
      path: this.#path,
      sealer: this.#sealer,
      log: this.#log,
      closedError: () => this.#closedError(),
      onLoad: (backlog) => {
        this.#backlog = backlog;
        this.#expiryFrom = 1; // a repair may bring back records below it
      },
    });
    this.#queue = new CommitQueue({
      intervalMs: options.commitIntervalMs ?? 5,
      maxItems: options.maxBatchRecords ?? 1000,
      commit: (records) => this.#write((database) => this.#commit(database, records)),
    });
  }

  /**
   * Opens the database, creating it if missing; after a crash LevelDB replays its log, a corrupt
   * database is repaired once. Rejects ATTACHE_CACHE_LOCKED when another process (or instance) holds
   * it, ATTACHE_CACHE_WRITE when it cannot be opened otherwise. While open or opening, returns the
   * same promise; while closing, rejects ATTACHE_CACHE_CLOSED.
   */
  open(): Promise<void> {
    if (this.#state === 'closing') return Promise.reject(this.#closedError());
    if (this.#state === 'closed') {
      this.#state = 'opening';
      this.#opening = this.#open();
    }
    return this.#opening ?? Promise.resolve();
  }

  /**
   * Stops accepting calls (they reject ATTACHE_CACHE_CLOSED), commits the appends already queued,
   * waits for the operations in flight, then closes the database. Resolves at once when closed.
   */
  async close(): Promise<void> {
    if (this.#state === 'opening') await this.#opening?.catch(() => undefined);
    if (this.#state === 'open') {
      this.#state = 'closing';
      this.#closing = this.#close();
    }
    await this.#closing;
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
    if (options.idempotencyKey === undefined) {
      const record = recordOf(draft);
      await this.#queue.push(record);
      return record;
    }
    const key = this.#sealer.tokenKey(`idempotency:${options.idempotencyKey}`);
    for (let pending = this.#pendingKeys.get(key); pending; pending = this.#pendingKeys.get(key)) {
      await pending.catch(() => undefined);
    }
    if (this.#idempotency?.has(key)) return undefined;
    const record = recordOf(draft);
    this.#keyOf.set(record, key);
    const push = this.#queue.push(record);
    this.#pendingKeys.set(key, push);
    try {
      await push;
    } finally {
      this.#pendingKeys.delete(key);
    }
    return record;
  }

  /**
   * Records with seq > `afterSeq` in seq order, decrypted: at most `limit`, at most `maxBytes` bytes
   * of JSON (UTF-8) in all, but at least one when any is stored. A record that fails authentication
   * is skipped and moved to quarantine before this resolves. Rejects ATTACHE_CACHE_CLOSED when not open.
   */
  async read(options: { afterSeq: number; limit: number; maxBytes: number }): Promise<StoredRecord[]> {
    checkReadOptions(options);
    const { records, suspects } = await this.#read((database) => readRecords(database, options));
    await this.#quarantine(suspects);
    return records;
  }

  /**
   * Deletes the records with `firstSeq <= seq <= lastSeq` in one synced write; seqs not stored are
   * ignored. Rejects ATTACHE_CACHE_WRITE when the write fails (nothing is deleted then),
   * ATTACHE_CACHE_CLOSED when not open.
   */
  async remove(firstSeq: number, lastSeq: number): Promise<void> {
    if (!isSeq(firstSeq)) throw new TypeError('"firstSeq" must be an integer >= 1');
    if (!isSeq(lastSeq) || lastSeq < firstSeq) {
      throw new TypeError('"lastSeq" must be an integer >= "firstSeq"');
    }
    this.#assertOpen();
    await this.#write(async (database) => {
      const removal = await removeBatch(database, this.#backlog, firstSeq, lastSeq);
      if (!removal) return;
      await this.#guardWrite(removal.batch.write({ sync: true }), `remove of ${removal.records} records`);
      this.#backlog = removal.next;
      this.#atBound = false;
      this.#removedSinceCompaction += removal.records;
    });
    this.#compactIfDrained();
  }

  /**
   * Compacts the outbox's key range so the space of removed records is given back (LevelDB would
   * otherwise keep them and their tombstones until its own compactions reach them), then stores the
   * time, which `health()` reports as `lastCompactionAt`. Runs beside appends and reads. Rejects
   * ATTACHE_CACHE_WRITE when LevelDB fails (ATTACHE_CACHE_FULL on a full disk), ATTACHE_CACHE_CLOSED
   * when not open.
   */
  async compact(): Promise<void> {
    const started = this.#removedSinceCompaction;
    await this.#read((database) => this.#guardWrite(compactOutbox(database.db), 'compaction'));
    this.#removedSinceCompaction -= Math.min(started, this.#removedSinceCompaction);
    const at = new Date().toISOString();
    // Not setState(): a compaction started by a drain may finish while close() waits for it.
    await this.#write((database) =>
      this.#guardWrite(putSealed(database, 'state', compactionStateKey, at), 'state'),
    );
    this.#log.info({ records: this.#backlog.records }, 'cache outbox compacted');
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
      const plan = await planRestore(database, this.#backlog, records);
      if (plan.batch) {
        await this.#guardWrite(plan.batch.write({ sync: true }), `restore of ${plan.stored} records`);
        this.#backlog = plan.next;
      }
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
    let call = this.#tokenCalls.get(patientId);
    if (!call) {
      call = this.#tokenOf(patientId).finally(() => this.#tokenCalls.delete(patientId));
      this.#tokenCalls.set(patientId, call);
    }
    return call;
  }

  /** The backlog waiting in the outbox. Rejects ATTACHE_CACHE_CLOSED when not open. */
  async stats(): Promise<BacklogStats> {
    this.#assertOpen();
    // Among the writes, so the counters match the records.
    return this.#write(async (database) => {
      const { first, suspects } = await firstRecord(database);
      await this.#quarantineIn(database, suspects);
      return backlogStats(database, this.#backlog, first);
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
   * range). Records whose clock was not synchronized are kept (and passed over once per open). Resolves with how many were dropped:
   * at once with 0 when there is no age limit, after reading one record when the oldest is young
   * enough. Rejects ATTACHE_CACHE_WRITE (or ATTACHE_CACHE_FULL on a full disk) when a write fails,
   * ATTACHE_CACHE_CLOSED when not open.
   */
  async expire(now: number = Date.now()): Promise<{ dropped: number }> {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('"now" must be a time in ms');
    this.#assertOpen();
    const { maxAgeMs } = this.#limits;
    if (maxAgeMs === 0) return { dropped: 0 };
    let dropped = 0;
    for (;;) {
      const count = await this.#write(async (database) => {
        const plan = await expireBatch(database, this.#backlog, {
          cutoffMs: now - maxAgeMs,
          most: expiryBatchRecords,
          fromSeq: this.#expiryFrom,
        });
        if (!plan.batch) {
          this.#expiryFrom = plan.resumeSeq;
          return 0;
        }
        await this.#guardWrite(plan.batch.write({ sync: true }), `expiry of ${plan.dropped.length} records`);
        this.#backlog = plan.next;
        this.#expiryFrom = plan.resumeSeq;
        this.#atBound = false;
        logDropped(this.#log, plan.dropped, `captured more than ${maxAgeMs} ms ago`);
        return plan.dropped.length;
      });
      dropped += count;
      if (count < expiryBatchRecords) return { dropped };
    }
  }

  /** Dropped and quarantined counts and whether the cache is at a bound now. Rejects ATTACHE_CACHE_CLOSED when not open. */
  async health(): Promise<CacheHealth> {
    this.#assertOpen();
    const { records, bytes, dropped } = this.#backlog;
    const { maxRecords, maxBytes } = this.#limits;
    try {
      this.#health.quarantined = await this.quarantineCount();
      this.#health.lastCompactionAt = (await this.getState<string>(compactionStateKey)) ?? null;
    } catch (err) {
      // e.g. a reopen after a failed write finds the disk still full: report what is known.
      this.#log.warn({ err }, 'cache health read failed: reporting the last known counts');
    }
    const full = this.#atBound || records >= maxRecords || bytes >= maxBytes;
    return { dropped, ...this.#health, full };
  }

  /**
   * The JSON value stored under `key`, undefined when there is none, or when it fails
   * authentication (it is then quarantined). Rejects ATTACHE_CACHE_CLOSED when not open.
   */
  async getState<T>(key: string): Promise<T | undefined> {
    checkKey('key', key);
    const { value, suspect } = await this.#read((database) => getSealed<T>(database, 'state', key));
    await this.#quarantine(suspect ? [suspect] : []);
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
    await this.#write((database) => this.#guardWrite(putSealed(database, 'state', key, value), 'state'));
  }

  async #open(): Promise<void> {
    try {
      await this.#session.load();
      this.#idempotency = await this.#session.read(IdempotencyIndex.load);
      this.#state = 'open';
      this.#log.info({ records: this.#backlog.records, nextSeq: this.#backlog.nextSeq }, 'cache opened');
    } catch (err) {
      this.#state = 'closed';
      this.#opening = undefined;
      throw err;
    }
  }

  async #close(): Promise<void> {
    try {
      await this.#queue.flush();
      await this.#compacting;
      await this.#session.close();
      this.#log.info({ records: this.#backlog.records, nextSeq: this.#backlog.nextSeq }, 'cache closed');
    } finally {
      this.#opening = undefined;
      this.#closing = undefined;
      this.#state = 'closed';
    }
  }

  #closedError(): GatewayError {
    return new GatewayError('ATTACHE_CACHE_CLOSED', `the cache at ${this.#path} is not open`);
  }

  /** Throws ATTACHE_CACHE_CLOSED unless open (not opening, not closing). */
  #assertOpen(): void {
    if (this.#state !== 'open') throw this.#closedError();
  }

  /** After a drain of at least `compactAfterRecords`, starts one compaction; a failure is logged. */
  #compactIfDrained(): void {
    const due = this.#compactAfter > 0 && this.#removedSinceCompaction >= this.#compactAfter;
    if (!due || this.#backlog.records > 0 || this.#compacting || this.#state !== 'open') return;
    this.#compacting = this.compact()
      .catch((err: unknown) => this.#log.error({ err }, 'compacting the cache after a drain failed'))
      .finally(() => {
        this.#compacting = undefined;
      });
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

  /** Awaits a write (see DatabaseSession.guard); a full disk puts the cache at its bound. */
  async #guardWrite(write: Promise<void>, what: string): Promise<void> {
    try {
      await this.#session.guard(write, what);
    } catch (err) {
      if ((err as GatewayError).code === 'ATTACHE_CACHE_FULL') this.#atBound = true;
      throw err;
    }
  }

  /**
   * One group of appends: the records that fit within the limits, the records dropped to make room
   * and the new counters in one atomic synced batch. Resolves with each record's outcome.
   */
  async #commit(database: Database, records: AttacheRecord[]): Promise<(Error | undefined)[]> {
    const { batch, next, outcomes, dropped } = await planAppend(
      database,
      this.#backlog,
      records,
      this.#limits,
    );
    const refused = outcomes.filter((o) => o !== undefined).length;
    if (batch) {
      const keys = records.flatMap((r, i) => {
        const key = this.#keyOf.get(r);
        return key !== undefined && outcomes[i] === undefined ? [key] : [];
      });
      const index = this.#idempotency;
      const staged = index && keys.length > 0 ? index.stage(batch, database, keys) : undefined;
      await this.#guardWrite(batch.write({ sync: true }), `append of ${records.length - refused} records`);
      this.#backlog = next;
      if (staged) index?.commit(staged);
    }
    if (dropped.length > 0) logDropped(this.#log, dropped, 'the cache is at a bound');
    if (refused > 0 && !this.#atBound) {
      this.#log.warn({ refused, records: next.records, bytes: next.bytes }, 'cache full: appends refused');
    }
    this.#atBound = refused > 0 || dropped.length > 0;
    this.#log.debug({ records: records.length - refused, lastSeq: next.nextSeq - 1 }, 'appends committed');
    return outcomes;
  }

  async #tokenOf(patientId: string): Promise<string> {
    const key = this.#sealer.tokenKey(patientId);
    const recent = this.#recentTokens.get(key);
    if (recent !== undefined && this.#state === 'open') return this.#remember(key, recent);
    const found = await this.#read((database) => getSealed<TokenEntry>(database, 'tokens', key));
    if (found.value) return this.#remember(key, found.value.token);
    const entry: TokenEntry = { token: newPatientToken(), createdAt: new Date().toISOString() };
    await this.#write((database) =>
      this.#guardWrite(putSealed(database, 'tokens', key, entry, found.suspect), 'patient token'),
    );
    if (found.suspect) logQuarantined(this.#log, found.suspect, 'a new token was issued');
    return this.#remember(key, entry.token);
  }

  /** Keeps the token among the 1,024 most recently used (a Map in use order). */
  #remember(key: string, token: string): string {
    this.#recentTokens.delete(key);
    this.#recentTokens.set(key, token);
    if (this.#recentTokens.size > recentTokenLimit) {
      this.#recentTokens.delete(this.#recentTokens.keys().next().value as string);
    }
    return token;
  }

  /** Moves suspects to quarantine, among the writes. A failure is logged: they are found again later. */
  async #quarantine(suspects: Suspect[]): Promise<void> {
    if (suspects.length === 0) return;
    await this.#write((database) => this.#quarantineIn(database, suspects)).catch((err: unknown) => {
      this.#log.error({ err }, 'moving values that failed authentication to quarantine failed');
    });
  }

  /** Moves suspects to quarantine in one synced batch; runs inside a write. */
  async #quarantineIn(database: Database, suspects: Suspect[]): Promise<void> {
    if (suspects.length === 0) return;
    const moved = await quarantineBatch(database, this.#backlog, suspects);
    if (!moved) return;
    await this.#guardWrite(moved.batch.write({ sync: true }), `quarantine of ${moved.moved.length} values`);
    this.#backlog = moved.next;
    for (const suspect of moved.moved) {
      logQuarantined(
        this.#log,
        suspect,
        suspect.sublevel === 'outbox' ? 'removed from the outbox' : 'reads as missing',
      );
    }
  }
}
