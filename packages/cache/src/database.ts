import { GatewayError, type Logger, mkdirDurably } from '@attache/core';
import { type BatchOperation, Level } from 'level';
import { isDiskFull } from './bounds.js';
import type { ReadSizes } from './read-sizes.js';
import { parseSeqKey, seqKey } from './seq-key.js';
import { levelKey, plainLength, type ValueSealer } from './value-sealer.js';

/** What `meta/outbox` holds: the counters of the outbox, written in the same batch as the records. */
export interface Backlog {
  /** The seq the next record gets. */
  nextSeq: number;
  /** Records in the outbox. */
  records: number;
  /** UTF-8 bytes of their JSON. */
  bytes: number;
  /** Records dropped at a bound or for their age, ever (absent in databases written before bounds: 0). */
  dropped: number;
}

/** A `tokens` entry (sealed), keyed by the HMAC of the patient identifier. */
export interface TokenEntry {
  token: string;
  /** RFC 3339. */
  createdAt: string;
}

/** The key of the outbox counters in `meta`. */
export const backlogKey = 'outbox';

/** The root database: values are bytes (each sublevel has its own encoding). */
type Root = Level<string, Buffer>;

function sublevels(db: Root) {
  return {
    outbox: db.sublevel<string, Buffer>('outbox', { valueEncoding: 'buffer' }),
    meta: db.sublevel<string, Backlog>('meta', { valueEncoding: 'json' }),
    tokens: db.sublevel<string, Buffer>('tokens', { valueEncoding: 'buffer' }),
    state: db.sublevel<string, Buffer>('state', { valueEncoding: 'buffer' }),
    quarantine: db.sublevel<string, Buffer>('quarantine', { valueEncoding: 'buffer' }),
    /** Idempotency keys of recent appends (HMACs) to their order of arrival; see idempotency.ts. */
    idempotency: db.sublevel<string, number>('idempotency', { valueEncoding: 'json' }),
  };
}

/** The open database, its sublevels (one per purpose), and the sealer of its values. */
export type Database = ReturnType<typeof sublevels> & { db: Root; sealer: ValueSealer };

/** The LevelDB code behind an abstract-level error (`open()` wraps it in LEVEL_DATABASE_NOT_OPEN). */
function levelCode(err: unknown): unknown {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return e.cause?.code ?? e.code;
}

// In Node.js `Level` is classic-level's ClassicLevel, whose static `repair` the `level` typings omit.
const repair = (Level as unknown as { repair(location: string): Promise<void> }).repair.bind(Level);

/**
 * LevelDB's options. Every value is ciphertext, which Snappy cannot shrink: compressing tables would
 * only cost CPU. LevelDB memory-maps each table file it holds open (up to 1,000 maps on 64-bit), and
 * every page a read touches stays in the process's RSS until the table leaves its table cache, which
 * holds `maxOpenFiles - 10` tables: the least LevelDB accepts (74, i.e. 64 tables) bounds the mapped
 * tables whatever the backlog. During a drain the compactor also compacts the range already removed
 * (`compactDrainedEvery`), so the tables it emptied are deleted and unmapped as the drain goes. See
 * the README, "Memory".
 */
const levelOptions = {
  valueEncoding: 'buffer',
  compression: false,
  maxOpenFiles: 74,
} as const;

/** LevelDB's memory: its write buffer and block cache, bytes (LevelCacheOptions; see the README, "Memory"). */
export interface LevelMemory {
  writeBufferBytes: number;
  blockCacheBytes: number;
}

async function openLevel(path: string, memory: LevelMemory): Promise<Root> {
  const db = new Level<string, Buffer>(path, {
    ...levelOptions,
    writeBufferSize: memory.writeBufferBytes,
    cacheSize: memory.blockCacheBytes,
  });
  await db.open();
  return db;
}

/**
 * Opens the database at `path`, creating it if missing. LevelDB replays its log by itself; a
 * corrupt database is repaired once (`repaired: true`: the counters must then be recounted).
 * Rejects ATTACHE_CACHE_LOCKED when another process holds it, ATTACHE_CACHE_WRITE otherwise.
 */
export async function openDatabase(
  path: string,
  sealer: ValueSealer,
  log: Logger,
  memory: LevelMemory,
): Promise<{ database: Database; repaired: boolean }> {
  let repaired = false;
  let db: Root;
  try {
    // LevelDB would create the directory, but without fsyncing its parent.
    await mkdirDurably(path);
    try {
      db = await openLevel(path, memory);
    } catch (err) {
      if (levelCode(err) !== 'LEVEL_CORRUPTION') throw err;
      log.error({ err }, 'cache database is corrupt, repairing it');
      await repair(path);
      repaired = true;
      db = await openLevel(path, memory);
    }
  } catch (err) {
    if (levelCode(err) === 'LEVEL_LOCKED') {
      throw new GatewayError('ATTACHE_CACHE_LOCKED', `the cache at ${path} is in use by another process`, {
        cause: err,
      });
    }
    if (isDiskFull(err)) {
      throw new GatewayError('ATTACHE_CACHE_FULL', `cannot open the cache at ${path}: the disk is full`, {
        cause: err,
      });
    }
    throw new GatewayError('ATTACHE_CACHE_WRITE', `cannot open the cache at ${path}`, { cause: err });
  }
  return { database: { db, sealer, ...sublevels(db) }, repaired };
}

/** Counts the outbox by reading it (without decrypting): records, bytes and the last seq (0 when empty). */
async function countOutbox(database: Database): Promise<{ records: number; bytes: number; lastSeq: number }> {
  let records = 0;
  let bytes = 0;
  let lastSeq = 0;
  for await (const [key, sealed] of database.outbox.iterator()) {
    records++;
    bytes += plainLength(sealed);
    lastSeq = parseSeqKey(key);
  }
  return { records, bytes, lastSeq };
}

/** The last seq in the outbox, 0 when empty. */
export async function lastSeqOf(database: Database): Promise<number> {
  const [key] = await database.outbox.keys({ reverse: true, limit: 1 }).all();
  return key === undefined ? 0 : parseSeqKey(key);
}

/**
 * The outbox counters as stored, recounted from the records when there are none or after a repair.
 * `nextSeq` is never below the last stored seq + 1.
 */
export async function loadBacklog(database: Database, recount: boolean): Promise<Backlog> {
  const stored = await database.meta.get(backlogKey);
  const dropped = stored?.dropped ?? 0;
  if (stored && !recount) {
    return { ...stored, dropped, nextSeq: Math.max(stored.nextSeq, (await lastSeqOf(database)) + 1) };
  }
  const counted = await countOutbox(database);
  return {
    nextSeq: Math.max(stored?.nextSeq ?? 1, counted.lastSeq + 1),
    records: counted.records,
    bytes: counted.bytes,
    dropped,
  };
}

/** A chained batch on the root database. */
export type Batch = ReturnType<Root['batch']>;

/** The sublevels whose keys `batchPut`/`batchDel` address. */
type SublevelName = 'outbox' | 'idempotency';

/**
 * Adds a put of raw bytes under `sublevel`'s `key` to a chained batch, addressed by the key's full
 * LevelDB form (`!sublevel!key`, abstract-level's documented sublevel prefix) in the root's buffer
 * encoding. abstract-level clones the options of every operation that has some (`{ sublevel }`),
 * which cost ~10 µs per record on this machine; an operation without options takes its fast path.
 */
export function batchPut(batch: Batch, sublevel: SublevelName, key: string, value: Buffer): void {
  batch.put(levelKey(sublevel, key), value);
}

/** Adds a delete of `sublevel`'s `key` to a chained batch (see {@link batchPut}). */
export function batchDel(batch: Batch, sublevel: SublevelName, key: string): void {
  batch.del(levelKey(sublevel, key));
}

/** Seqs `firstSeq` to `lastSeq`, both included. */
export interface SeqRange {
  firstSeq: number;
  lastSeq: number;
}

/** `ranges` sorted, overlapping and adjacent ones merged. */
function mergeRanges(ranges: readonly SeqRange[]): SeqRange[] {
  const merged: SeqRange[] = [];
  for (const range of [...ranges].sort((a, b) => a.firstSeq - b.firstSeq)) {
    const last = merged.at(-1);
    if (last !== undefined && range.firstSeq <= last.lastSeq + 1) {
      last.lastSeq = Math.max(last.lastSeq, range.lastSeq);
    } else merged.push({ ...range });
  }
  return merged;
}

/** Keys fetched at a time by `removeBatch` (a batch message holds ~300 records). */
const removeStep = 1000;

/**
 * The options of a synced write. Frozen: abstract-level copies a batch's options into each of its
 * operations (`{ ...options, ...operation }`), which V8 does ~20 times faster from a frozen object
 * (~0.1 µs against ~2.5 µs per operation on this project's VM).
 */
export const syncedWrite: { readonly sync: true } = Object.freeze({ sync: true });

/** What a synced write takes: a chained batch, or an {@link OperationBatch}. */
export interface Writable {
  write(options: typeof syncedWrite): Promise<void>;
}

/** A delete, or a put into a sublevel, of a batch given as an array. */
type Operation = BatchOperation<Root, string, Buffer | Backlog>;

/**
 * Operations written as one array (`db.batch(operations)`), whose native LevelDB batch is freed as
 * soon as it is written. A chained batch's (`db.batch()`, then `del`s) is freed only when V8
 * collects the batch's object, and the object, held while its synced write is in flight, has by then
 * usually outlived the young generation: in a drain, which leaves V8 little reason for a full GC,
 * the removes' batches piled up (~50 bytes per record removed).
 */
export class OperationBatch implements Writable {
  readonly #db: Root;
  readonly #operations: Operation[] = [];

  constructor(db: Root) {
    this.#db = db;
  }

  del(key: string): void {
    this.#operations.push({ type: 'del', key });
  }

  /** Puts the outbox counters into `meta`. */
  putBacklog(meta: Database['meta'], next: Backlog): void {
    this.#operations.push({ type: 'put', sublevel: meta, key: backlogKey, value: next });
  }

  write(options: typeof syncedWrite): Promise<void> {
    return this.#db.batch<string, Buffer | Backlog>(this.#operations, options);
  }
}

/**
 * The batch that deletes the stored records in any of `ranges` and updates the counters; undefined
 * when none is stored. A range whose every seq has a size in `sizes` is stored whole (a remove, drop,
 * quarantine or restore since its read would have taken or cleared a size): its keys are made from
 * the seqs, with no iterator. Another range's keys are walked (keys only): the bytes of each record
 * come from `sizes` (noted when it was read), and only a record whose size is not known is read again.
 */
export async function removeBatch(
  database: Database,
  backlog: Backlog,
  ranges: readonly SeqRange[],
  sizes: ReadSizes,
): Promise<{ batch: Writable; next: Backlog; records: number; bytes: number } | undefined> {
  const { db, meta } = database;
  const batch = new OperationBatch(db);
  let records = 0;
  let bytes = 0;
  const prefix = levelKey('outbox', '').length;
  for (const { firstSeq, lastSeq } of mergeRanges(ranges)) {
    if (allNoted(sizes, firstSeq, lastSeq)) {
      // Every seq of the range was read and is still stored (see ReadSizes): its keys are known.
      for (let seq = firstSeq; seq <= lastSeq; seq++) {
        batch.del(levelKey('outbox', seqKey(seq)));
        bytes += sizes.take(seq) ?? 0;
      }
      records += lastSeq - firstSeq + 1;
      continue;
    }
    // The root's keys in their full form, fetched in steps: no sublevel decoding, no call per key.
    const keys = db.keys({
      gte: levelKey('outbox', seqKey(firstSeq)),
      lte: levelKey('outbox', seqKey(lastSeq)),
    });
    // classic-level reserves room for `size` keys in native memory that stays until V8 collects the
    // iterator: no more than the range can hold.
    const span = lastSeq - firstSeq + 1;
    const size = Math.min(removeStep, span);
    try {
      // Once every seq of the range is found there can be no more: no last call to learn the end.
      for (let found = 0; found < span; ) {
        const step = await keys.nextv(size);
        if (step.length === 0) break;
        found += step.length;
        for (const full of step) {
          batch.del(full);
          records++;
          const key = full.slice(prefix);
          bytes += sizes.take(parseSeqKey(key)) ?? (await storedLength(database, key));
        }
      }
    } finally {
      await keys.close();
    }
  }
  if (records === 0) return undefined;
  const next = { ...backlog, records: backlog.records - records, bytes: backlog.bytes - bytes };
  batch.putBacklog(meta, next);
  return { batch, next, records, bytes };
}

/** True when `sizes` holds a size for every seq from `firstSeq` to `lastSeq`. */
function allNoted(sizes: ReadSizes, firstSeq: number, lastSeq: number): boolean {
  for (let seq = firstSeq; seq <= lastSeq; seq++) if (!sizes.has(seq)) return false;
  return true;
}

/** The JSON bytes of the record stored under outbox `key` (0 when it is gone), without decrypting. */
async function storedLength(database: Database, key: string): Promise<number> {
  const sealed = await database.outbox.get(key);
  return sealed === undefined ? 0 : plainLength(sealed);
}

/** Opens the database (see {@link openDatabase}) and loads its counters. */
export async function openCache(
  path: string,
  sealer: ValueSealer,
  log: Logger,
  memory: LevelMemory,
): Promise<{ database: Database; backlog: Backlog }> {
  const { database, repaired } = await openDatabase(path, sealer, log, memory);
  try {
    return { database, backlog: await loadBacklog(database, repaired) };
  } catch (err) {
    await database.db.close();
    throw err;
  }
}
