import { type AttacheRecord, type Clock, GatewayError, type Logger, type RecordDraft } from '@attache/core';
import { type AppendPlan, type CacheLimits, logDropped, planAppend } from './bounds.js';
import { recordOf } from './checks.js';
import { CommitQueue } from './commit-queue.js';
import type { Database } from './database.js';
import type { DatabaseSession } from './database-session.js';
import { IdempotencyIndex } from './idempotency.js';
import type { ValueSealer } from './value-sealer.js';

/** Options of {@link AppendWriter}. */
export interface AppendWriterOptions {
  session: DatabaseSession;
  sealer: ValueSealer;
  log: Logger;
  limits: CacheLimits;
  /** Group commit: how long the first append of an idle cache waits for others, ms (see CommitQueue). */
  commitIntervalMs: number;
  /** Sets that timer (default Node's timers). */
  clock?: Pick<Clock, 'setTimeout'>;
  /** Most records per synced write. */
  maxBatchRecords: number;
}

/** A queued append: its record and, for a keyed append, the HMAC of its idempotency key. */
interface Queued {
  record: AttacheRecord;
  key: string | undefined;
}

/**
 * The append side of the cache: drafts become records, queued and committed in groups, each group
 * one synced write holding its records (sealed), the records dropped to make room, the counters and
 * the idempotency keys of its keyed appends.
 */
export class AppendWriter {
  readonly #session: DatabaseSession;
  readonly #sealer: ValueSealer;
  readonly #log: Logger;
  readonly #limits: CacheLimits;
  readonly #queue: CommitQueue<Queued>;
  /** Appends with an idempotency key not yet committed, by key: a second one waits for the first. */
  readonly #pendingKeys = new Map<string, Promise<void>>();
  /** The records of each `appendAll` of several, by record: stored all or none. */
  readonly #unitOf = new WeakMap<AttacheRecord, AttacheRecord[]>();
  #idempotency: IdempotencyIndex | undefined;

  /** Assigns the options; no I/O. */
  constructor(options: AppendWriterOptions) {
    this.#session = options.session;
    this.#sealer = options.sealer;
    this.#log = options.log;
    this.#limits = options.limits;
    this.#queue = new CommitQueue({
      intervalMs: options.commitIntervalMs,
      maxItems: options.maxBatchRecords,
      clock: options.clock,
      commit: (queued) => this.#session.write((database) => this.#commit(database, queued)),
    });
  }

  /** Reads the stored idempotency keys; call once the session is open. */
  async load(): Promise<void> {
    this.#idempotency = await this.#session.read(IdempotencyIndex.load);
  }

  /**
   * Checks the draft (ATTACHE_MALFORMED), queues it and resolves with the record once its group is
   * written; with an `idempotencyKey` stored recently, resolves undefined and writes nothing.
   */
  async append(draft: RecordDraft, idempotencyKey?: string): Promise<AttacheRecord | undefined> {
    if (idempotencyKey === undefined) {
      const record = recordOf(draft);
      await this.#queue.push({ record, key: undefined });
      return record;
    }
    const key = this.#sealer.tokenKey(`idempotency:${idempotencyKey}`);
    if (this.#pendingKeys.has(key)) await this.#settled(key);
    if (this.#idempotency?.has(key)) return undefined;
    const record = recordOf(draft);
    const push = this.#queue.push({ record, key });
    this.#pendingKeys.set(key, push);
    try {
      await push;
    } finally {
      this.#pendingKeys.delete(key);
    }
    return record;
  }

  /**
   * Appends the drafts all or none, in one synced write: checks each (ATTACHE_MALFORMED, nothing
   * queued), leaves out those whose key (`idempotencyKeys[i]`) was stored recently, and resolves with
   * each record (undefined for those left out) once written; when one cannot be stored (a bound),
   * none is, and it rejects with that one's error.
   */
  async appendAll(
    drafts: RecordDraft[],
    idempotencyKeys: readonly (string | undefined)[] = [],
  ): Promise<(AttacheRecord | undefined)[]> {
    const keys = idempotencyKeys.map((k) =>
      k === undefined ? undefined : this.#sealer.tokenKey(`idempotency:${k}`),
    );
    for (const key of keys) if (key !== undefined && this.#pendingKeys.has(key)) await this.#settled(key);
    const records = drafts.map((draft, i) => {
      const key = keys[i];
      return key !== undefined && this.#idempotency?.has(key) ? undefined : recordOf(draft);
    });
    const unit = records.filter((r) => r !== undefined);
    const items: Queued[] = [];
    /** The keys of the records queued now: a concurrent re-send waits for them. */
    const held: string[] = [];
    for (const [i, record] of records.entries()) {
      const key = keys[i];
      if (record === undefined) continue;
      items.push({ record, key });
      if (key !== undefined) held.push(key);
      if (unit.length > 1) this.#unitOf.set(record, unit);
    }
    const push = this.#queue.pushAll(items);
    for (const key of held) this.#pendingKeys.set(key, push);
    try {
      await push;
    } finally {
      for (const key of held) this.#pendingKeys.delete(key);
    }
    return records;
  }

  /** Resolves once no append with the key (its HMAC) is waiting for its write, however that ended. */
  async #settled(key: string): Promise<void> {
    for (let pending = this.#pendingKeys.get(key); pending; pending = this.#pendingKeys.get(key)) {
      await pending.catch(() => undefined);
    }
  }

  /** Commits everything queued; resolves once nothing is queued or being written. */
  flush(): Promise<void> {
    return this.#queue.flush();
  }

  /**
   * One group of appends: the records that fit within the limits, the records dropped to make room
   * and the new counters in one atomic synced batch. Resolves with each record's outcome.
   */
  async #commit(database: Database, queued: Queued[]): Promise<(Error | undefined)[]> {
    const session = this.#session;
    if (session.waitingForSpace) {
      // Queued before the disk was found full: the space left is for draining.
      const full = new GatewayError(
        'ATTACHE_CACHE_FULL',
        'the disk is full: readings wait until space returns',
      );
      return queued.map(() => full);
    }
    const records = queued.map((q) => q.record);
    const { batch, next, outcomes, dropped } = await this.#plan(database, records);
    const refused = outcomes.filter((o) => o !== undefined).length;
    if (batch) {
      const keys: string[] = [];
      for (const [i, { key }] of queued.entries())
        if (key !== undefined && outcomes[i] === undefined) keys.push(key);
      const index = this.#idempotency;
      const staged = index && keys.length > 0 ? index.stage(batch, keys) : undefined;
      const committed = session.commit(batch, next, `append of ${records.length - refused} records`);
      try {
        // While the write is on the disk: the cipher and HMACs of the next appends (see ValueSealer.prepare).
        this.#sealer.prepare();
      } finally {
        await committed;
      }
      if (staged) index?.commit(staged);
    }
    if (dropped.length > 0) logDropped(this.#log, dropped, 'the cache is at a bound');
    if (refused > 0 && !session.atBound) {
      this.#log.warn({ refused, records: next.records, bytes: next.bytes }, 'cache full: appends refused');
    }
    session.atBound = refused > 0 || dropped.length > 0;
    this.#log.debug({ records: records.length - refused, lastSeq: next.nextSeq - 1 }, 'appends committed');
    return outcomes;
  }

  /**
   * {@link planAppend}, planned again without the `appendAll` units of which a record was refused
   * (each of their records then fails with that error), so that a unit is written whole or not at all.
   */
  async #plan(database: Database, records: AttacheRecord[]): Promise<AppendPlan> {
    const failed = new Map<AttacheRecord[], GatewayError>();
    const failure = (r: AttacheRecord) => {
      const unit = this.#unitOf.get(r);
      return unit && failed.get(unit);
    };
    for (;;) {
      const kept = failed.size === 0 ? records : records.filter((r) => failure(r) === undefined);
      const plan = await planAppend(database, this.#session.backlog, kept, this.#limits);
      let more = false;
      for (const [i, error] of plan.outcomes.entries()) {
        const unit = error && this.#unitOf.get(kept[i] as AttacheRecord);
        if (unit && !failed.has(unit)) {
          failed.set(unit, error);
          more = true;
        }
      }
      if (more) continue;
      if (kept === records) return plan;
      return { ...plan, outcomes: records.map((r) => failure(r) ?? plan.outcomes[kept.indexOf(r)]) };
    }
  }
}
