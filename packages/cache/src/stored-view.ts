import { existsSync, statfs as statfsCallback, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type AttacheRecord, type BacklogStats, GatewayError } from '@attache/core';
import { Level } from 'level';
import type { CacheHealth, CacheLimits } from './bounds.js';
import { type Backlog, backlogKey } from './database.js';
import { reserveFileName } from './disk-reserve.js';
import type { CacheKeyring } from './keyring.js';
import { compactionStateKey } from './maintenance.js';
import { parseSeqKey } from './seq-key.js';
import { levelKey, plainLength, ValueSealer } from './value-sealer.js';

// `@attache/cache/stored-view` is imported by name (not through the package's main entry, which
// loads every module of the package) by `attache status` when no gateway runs: the key file too.
export { readKeyring } from './keyring.js';

/** What {@link readStoredCache} needs: where the cache is, its keys, and the bounds it is held to. */
export interface StoredCacheOptions {
  /** The cache directory (LevelDB's). */
  path: string;
  keyring: CacheKeyring;
  limits: CacheLimits;
  /** The disk reserve's size (`cache.diskReserveBytes`; 0: none). */
  reserveBytes: number;
  /** Keys of state values to read as well (e.g. the last window's). */
  stateKeys?: readonly string[];
}

/** What a cache no process has open holds, as `LevelCache.stats()`, `health()` and `getState()` would say. */
export interface StoredCacheView {
  backlog: BacklogStats;
  health: CacheHealth;
  /** The values of `stateKeys` that are stored and authenticate. */
  state: Record<string, unknown>;
}

/** The LevelDB code behind an abstract-level error (`open()` wraps it in LEVEL_DATABASE_NOT_OPEN). */
function levelCode(err: unknown): unknown {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return e.cause?.code ?? e.code;
}

/** The first and last key of a sublevel's range in the root database (abstract-level's `!name!` prefix). */
const range = (sublevel: string) => ({ gte: levelKey(sublevel, ''), lt: `!${sublevel}"` });

/**
 * Reads the backlog, health and some state values of the cache at `path` without `LevelCache`: for
 * `attache status` while no gateway runs, which must be quick and must change nothing. It opens the
 * database as it is (never creating or repairing it), reads the outbox counters the appends and
 * removes keep in `meta`, the first record that authenticates (the oldest capture time), the last
 * seq, the quarantine's size and the state values asked for, and closes it. It does not load the
 * idempotency index, make the disk reserve, or move a value that fails authentication to the
 * quarantine (the gateway does at its next read of it): such a value counts in `quarantined` (and a
 * record, no longer in the backlog), as LevelCache would say once it has moved it.
 * `full` is whether the counters are at a bound, or the reserve is missing and the disk has too
 * little room to make it (as the gateway finds at its start).
 *
 * Resolves undefined when there is no database at `path`, or when it is corrupt (then open it with
 * `LevelCache`, which repairs it). Rejects ATTACHE_CACHE_LOCKED while another process holds it,
 * ATTACHE_CACHE_WRITE when it cannot be opened otherwise.
 */
export async function readStoredCache(options: StoredCacheOptions): Promise<StoredCacheView | undefined> {
  const { path, limits, reserveBytes } = options;
  // LevelDB's open still writes (a new log and manifest): never where no database is. Looked up on
  // this thread, as the reserve below: a command's, no thread-pool round trip, no error made.
  if (!existsSync(join(path, 'CURRENT'))) return undefined;
  const db = new Level<string, Buffer>(path, {
    createIfMissing: false,
    valueEncoding: 'buffer',
    compression: false,
    maxOpenFiles: 74,
  });
  try {
    await db.open();
  } catch (err) {
    const code = levelCode(err);
    if (code === 'LEVEL_CORRUPTION') return undefined;
    if (code === 'LEVEL_LOCKED') {
      throw new GatewayError('ATTACHE_CACHE_LOCKED', `the cache at ${path} is in use by another process`, {
        cause: err,
      });
    }
    throw new GatewayError('ATTACHE_CACHE_WRITE', `cannot open the cache at ${path}`, { cause: err });
  }
  try {
    const sealer = new ValueSealer(options.keyring);
    const names = [compactionStateKey, ...(options.stateKeys ?? [])];
    // Independent reads, in flight together: each is a round trip through libuv's thread pool,
    // which on a busy box waits for a time slice.
    const [counters, lastSeq, oldest, values, quarantine, reserveHeld] = await Promise.all([
      readCounters(db),
      lastSeqOf(db),
      firstAuthentic(db, sealer),
      Promise.all(names.map((name) => readState(db, sealer, name))),
      db.keys(range('quarantine')).all(),
      reserveCanBeHeld(path, reserveBytes),
    ]);
    const { first, skipped, skippedBytes } = oldest;
    const state: Record<string, unknown> = {};
    names.forEach((name, i) => {
      const found = values[i];
      if (found !== undefined && 'value' in found) state[name] = found.value;
    });
    const suspects = skipped + values.filter((v) => v !== undefined && !('value' in v)).length;
    const nextSeq = Math.max(counters.nextSeq ?? 1, lastSeq + 1);
    const count = (counters.records ?? 0) - skipped;
    const bytes = (counters.bytes ?? 0) - skippedBytes;
    const backlog: BacklogStats = first
      ? { records: count, bytes, firstSeq: first.seq, lastSeq, oldestCapturedAt: first.capturedAt, nextSeq }
      : { records: count, bytes, firstSeq: null, lastSeq: null, oldestCapturedAt: null, nextSeq };
    const health: CacheHealth = {
      dropped: counters.dropped ?? 0,
      quarantined: quarantine.length + suspects,
      lastCompactionAt: (state[compactionStateKey] as string | undefined) ?? null,
      full: count >= limits.maxRecords || bytes >= limits.maxBytes || !reserveHeld,
    };
    delete state[compactionStateKey];
    return { backlog, health, state };
  } finally {
    await db.close();
  }
}

type Root = Level<string, Buffer>;

/** The outbox counters in `meta`, or counted from the records where none are stored (an older database). */
async function readCounters(db: Root): Promise<Partial<Backlog>> {
  const stored = await db.get<string, Backlog>(levelKey('meta', backlogKey), { valueEncoding: 'json' });
  return stored ?? (await countOutbox(db));
}

/** The last seq in the outbox, 0 when empty. */
async function lastSeqOf(db: Root): Promise<number> {
  const [key] = await db.keys({ ...range('outbox'), reverse: true, limit: 1 }).all();
  return key === undefined ? 0 : parseSeqKey(key.slice(levelKey('outbox', '').length));
}

/**
 * The first outbox record that authenticates, and the records before it that do not (LevelCache's
 * stats() moves those to the quarantine and out of the counters).
 */
async function firstAuthentic(
  db: Root,
  sealer: ValueSealer,
): Promise<{ first: AttacheRecord | undefined; skipped: number; skippedBytes: number }> {
  let skipped = 0;
  let skippedBytes = 0;
  const records = db.iterator(range('outbox'));
  try {
    for await (const [key, value] of records) {
      const plain = sealer.open(key, value);
      if (plain !== undefined) return { first: JSON.parse(plain.toString('utf8')), skipped, skippedBytes };
      skipped++;
      skippedBytes += plainLength(value);
    }
  } finally {
    await records.close();
  }
  return { first: undefined, skipped, skippedBytes };
}

/** A state value: `{ value }` when it authenticates, `{}` when it does not, undefined when none is stored. */
async function readState(
  db: Root,
  sealer: ValueSealer,
  name: string,
): Promise<{ value?: unknown } | undefined> {
  const key = levelKey('state', name);
  const sealed = await db.get(key);
  if (sealed === undefined) return undefined;
  const plain = sealer.open(key, sealed);
  return plain === undefined ? {} : { value: JSON.parse(plain.toString('utf8')) };
}

/** Counts the outbox (a database written before its counters were kept): records and bytes. */
async function countOutbox(db: Root): Promise<Partial<Backlog>> {
  let records = 0;
  let bytes = 0;
  for await (const value of db.values(range('outbox'))) {
    records++;
    bytes += plainLength(value);
  }
  return { records, bytes };
}

const statfs = promisify(statfsCallback);

/**
 * Whether the gateway would hold its disk reserve: none is wanted, it is there at its size, or the
 * filesystem has room to make it and as much again (DiskReserve.acquire).
 */
async function reserveCanBeHeld(dir: string, bytes: number): Promise<boolean> {
  if (bytes === 0) return true;
  if (statSync(join(dir, reserveFileName), { throwIfNoEntry: false })?.size === bytes) return true;
  const fs = await statfs(dir).catch(() => undefined);
  return fs !== undefined && fs.bavail * fs.bsize >= 2 * bytes;
}
