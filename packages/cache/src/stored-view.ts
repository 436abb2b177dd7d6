import { statfs as statfsCallback } from 'node:fs';
import { stat } from 'node:fs/promises';
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
  // LevelDB's open still writes (a new log and manifest): never where no database is.
  const exists = await stat(join(path, 'CURRENT')).then(
    () => true,
    () => false,
  );
  if (!exists) return undefined;
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
    let suspects = 0;
    const open = (key: string, value: Buffer): Buffer | undefined => {
      const plain = sealer.open(key, value);
      if (plain === undefined) suspects++;
      return plain;
    };
    const stored = await db.get(levelKey('meta', backlogKey), { valueEncoding: 'json' });
    const counted = stored === undefined ? await countOutbox(db) : undefined;
    const counters = (stored ?? counted) as Partial<Backlog>;
    const lastKey = (await db.keys({ ...range('outbox'), reverse: true, limit: 1 }).all())[0];
    const lastSeq = lastKey === undefined ? 0 : parseSeqKey(lastKey.slice(levelKey('outbox', '').length));
    let first: AttacheRecord | undefined;
    // Records before the first that authenticates leave the counters, as LevelCache.stats() moves them.
    let skipped = 0;
    let skippedBytes = 0;
    const records = db.iterator(range('outbox'));
    try {
      for await (const [key, value] of records) {
        const plain = open(key, value);
        if (plain !== undefined) {
          first = JSON.parse(plain.toString('utf8')) as AttacheRecord;
          break;
        }
        skipped++;
        skippedBytes += plainLength(value);
      }
    } finally {
      await records.close();
    }
    const state: Record<string, unknown> = {};
    for (const name of [compactionStateKey, ...(options.stateKeys ?? [])]) {
      const key = levelKey('state', name);
      const value = await db.get(key);
      const plain = value === undefined ? undefined : open(key, value);
      if (plain !== undefined) state[name] = JSON.parse(plain.toString('utf8'));
    }
    const quarantined = (await db.keys(range('quarantine')).all()).length + suspects;
    const nextSeq = Math.max(counters.nextSeq ?? 1, lastSeq + 1);
    const count = (counters.records ?? 0) - skipped;
    const bytes = (counters.bytes ?? 0) - skippedBytes;
    const backlog: BacklogStats = first
      ? { records: count, bytes, firstSeq: first.seq, lastSeq, oldestCapturedAt: first.capturedAt, nextSeq }
      : { records: count, bytes, firstSeq: null, lastSeq: null, oldestCapturedAt: null, nextSeq };
    const atBound = count >= limits.maxRecords || bytes >= limits.maxBytes;
    const health: CacheHealth = {
      dropped: counters.dropped ?? 0,
      quarantined,
      lastCompactionAt: (state[compactionStateKey] as string | undefined) ?? null,
      full: atBound || !(await reserveCanBeHeld(path, reserveBytes)),
    };
    delete state[compactionStateKey];
    return { backlog, health, state };
  } finally {
    await db.close();
  }
}

/** Counts the outbox (a database written before its counters were kept): records and bytes. */
async function countOutbox(db: Level<string, Buffer>): Promise<Partial<Backlog>> {
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
  const size = await stat(join(dir, reserveFileName)).then(
    (s) => s.size,
    () => -1,
  );
  if (size === bytes) return true;
  const fs = await statfs(dir).catch(() => undefined);
  return fs !== undefined && fs.bavail * fs.bsize >= 2 * bytes;
}
