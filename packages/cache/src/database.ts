import {
  type AttacheRecord,
  type BacklogStats,
  GatewayError,
  type Logger,
  type StoredRecord,
} from '@attache/core';
import { Level } from 'level';
import { parseSeqKey, seqKey } from './seq-key.js';

/** What `meta/outbox` holds: the counters of the outbox, written in the same batch as the records. */
export interface Backlog {
  /** The seq the next record gets. */
  nextSeq: number;
  /** Records in the outbox. */
  records: number;
  /** UTF-8 bytes of their JSON. */
  bytes: number;
}

/** A `tokens` entry, keyed by the patient identifier. */
export interface TokenEntry {
  token: string;
  /** RFC 3339. */
  createdAt: string;
}

/** The key of the outbox counters in `meta`. */
export const backlogKey = 'outbox';

function sublevels(db: Level) {
  return {
    outbox: db.sublevel<string, string>('outbox', { valueEncoding: 'utf8' }),
    meta: db.sublevel<string, Backlog>('meta', { valueEncoding: 'json' }),
    tokens: db.sublevel<string, TokenEntry>('tokens', { valueEncoding: 'json' }),
    state: db.sublevel<string, unknown>('state', { valueEncoding: 'json' }),
  };
}

/** The open database and its sublevels, one per purpose. */
export type Database = ReturnType<typeof sublevels> & { db: Level };

/** UTF-8 length of a record's JSON. */
export function jsonBytes(json: string): number {
  return Buffer.byteLength(json, 'utf8');
}

/** The LevelDB code behind an abstract-level error (`open()` wraps it in LEVEL_DATABASE_NOT_OPEN). */
function levelCode(err: unknown): unknown {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return e.cause?.code ?? e.code;
}

// In Node.js `Level` is classic-level's ClassicLevel, whose static `repair` the `level` typings omit.
const repair = (Level as unknown as { repair(location: string): Promise<void> }).repair.bind(Level);

async function openLevel(path: string): Promise<Level> {
  const db = new Level(path);
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
  log: Logger,
): Promise<{ database: Database; repaired: boolean }> {
  let repaired = false;
  let db: Level;
  try {
    try {
      db = await openLevel(path);
    } catch (err) {
      if (levelCode(err) !== 'LEVEL_CORRUPTION') throw err;
      log.error({ err }, 'cache database is corrupt, repairing it');
      await repair(path);
      repaired = true;
      db = await openLevel(path);
    }
  } catch (err) {
    if (levelCode(err) === 'LEVEL_LOCKED') {
      throw new GatewayError('ATTACHE_CACHE_LOCKED', `the cache at ${path} is in use by another process`, {
        cause: err,
      });
    }
    throw new GatewayError('ATTACHE_CACHE_WRITE', `cannot open the cache at ${path}`, { cause: err });
  }
  return { database: { db, ...sublevels(db) }, repaired };
}

/** Counts the outbox by reading it: records, bytes and the last seq (0 when empty). */
async function countOutbox(database: Database): Promise<{ records: number; bytes: number; lastSeq: number }> {
  let records = 0;
  let bytes = 0;
  let lastSeq = 0;
  for await (const [key, json] of database.outbox.iterator()) {
    records++;
    bytes += jsonBytes(json);
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
  if (stored && !recount) {
    return { ...stored, nextSeq: Math.max(stored.nextSeq, (await lastSeqOf(database)) + 1) };
  }
  const counted = await countOutbox(database);
  return {
    nextSeq: Math.max(stored?.nextSeq ?? 1, counted.lastSeq + 1),
    records: counted.records,
    bytes: counted.bytes,
  };
}

type Batch = ReturnType<Level['batch']>;

/**
 * The batch that stores a group of records and the new counters, and those counters. Gives the
 * records their seqs, in order, from `backlog.nextSeq`.
 */
export function appendBatch(
  database: Database,
  backlog: Backlog,
  records: AttacheRecord[],
): { batch: Batch; next: Backlog } {
  const { db, outbox, meta } = database;
  const batch = db.batch();
  let bytes = 0;
  for (const [i, record] of records.entries()) {
    record.seq = backlog.nextSeq + i;
    const json = JSON.stringify(record);
    bytes += jsonBytes(json);
    batch.put(seqKey(record.seq), json, { sublevel: outbox });
  }
  const next = {
    nextSeq: backlog.nextSeq + records.length,
    records: backlog.records + records.length,
    bytes: backlog.bytes + bytes,
  };
  batch.put(backlogKey, next, { sublevel: meta });
  return { batch, next };
}

/**
 * The batch that deletes the stored records with `firstSeq <= seq <= lastSeq` and updates the
 * counters; undefined when none is stored.
 */
export async function removeBatch(
  database: Database,
  backlog: Backlog,
  firstSeq: number,
  lastSeq: number,
): Promise<{ batch: Batch; next: Backlog; records: number } | undefined> {
  const { db, outbox, meta } = database;
  const batch = db.batch();
  let records = 0;
  let bytes = 0;
  for await (const [key, json] of outbox.iterator({ gte: seqKey(firstSeq), lte: seqKey(lastSeq) })) {
    batch.del(key, { sublevel: outbox });
    records++;
    bytes += jsonBytes(json);
  }
  if (records === 0) {
    await batch.close();
    return undefined;
  }
  const next = { ...backlog, records: backlog.records - records, bytes: backlog.bytes - bytes };
  batch.put(backlogKey, next, { sublevel: meta });
  return { batch, next, records };
}

/** Puts one value into a sublevel with a synced write (a one-entry batch on the root database). */
export function putSynced<V>(
  database: Database,
  sublevel: Database['tokens'] | Database['state'],
  key: string,
  value: V,
): Promise<void> {
  return database.db.batch().put(key, value, { sublevel }).write({ sync: true });
}

/** The stats of the outbox: `backlog`'s counters, the first and last seq, the oldest `capturedAt`. */
export async function backlogStats(database: Database, backlog: Backlog): Promise<BacklogStats> {
  const { nextSeq, records, bytes } = backlog;
  const [first] = await database.outbox.iterator({ limit: 1 }).all();
  if (!first) return { records, bytes, firstSeq: null, lastSeq: null, oldestCapturedAt: null, nextSeq };
  const { capturedAt } = JSON.parse(first[1]) as AttacheRecord;
  const lastSeq = await lastSeqOf(database);
  return { records, bytes, firstSeq: parseSeqKey(first[0]), lastSeq, oldestCapturedAt: capturedAt, nextSeq };
}

/** Opens the database (see {@link openDatabase}) and loads its counters. */
export async function openCache(
  path: string,
  log: Logger,
): Promise<{ database: Database; backlog: Backlog }> {
  const { database, repaired } = await openDatabase(path, log);
  try {
    return { database, backlog: await loadBacklog(database, repaired) };
  } catch (err) {
    await database.db.close();
    throw err;
  }
}

/** Records with seq > `afterSeq`, at most `limit`, at most `maxBytes` of JSON but at least one. */
export async function readRecords(
  { outbox }: Database,
  options: { afterSeq: number; limit: number; maxBytes: number },
): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  let bytes = 0;
  for await (const [key, json] of outbox.iterator({ gt: seqKey(options.afterSeq), limit: options.limit })) {
    bytes += jsonBytes(json);
    if (out.length > 0 && bytes > options.maxBytes) break;
    out.push({ seq: parseSeqKey(key), json });
  }
  return out;
}
