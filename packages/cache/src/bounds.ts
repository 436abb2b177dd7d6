import { type AttacheRecord, GatewayError, type Logger } from '@attache/core';
import { type Backlog, type Batch, backlogKey, batchDel, batchPut, type Database } from './database.js';
import { parseSeqKey, seqKey } from './seq-key.js';
import { levelKey, plainLength } from './value-sealer.js';

/** The bounds of the outbox (see the README, "Bounds"). */
export interface CacheLimits {
  /** Most records waiting (>= 1). */
  maxRecords: number;
  /** Most bytes of record JSON (UTF-8, before encryption) waiting, as `stats().bytes` counts them (>= 1). */
  maxBytes: number;
  /** Records captured longer ago than this many ms are dropped by `expire()`; 0 = no age limit. */
  maxAgeMs: number;
  /** At maxRecords or maxBytes: `refuse` the new record, or `drop-oldest` waiting records to make room. */
  whenFull: 'refuse' | 'drop-oldest';
}

/** No bounds at all: the behaviour without `limits`. */
export const noLimits: CacheLimits = {
  maxRecords: Number.POSITIVE_INFINITY,
  maxBytes: Number.POSITIVE_INFINITY,
  maxAgeMs: 0,
  whenFull: 'refuse',
};

/** What `LevelCache.health()` reports. */
export interface CacheHealth {
  /** Records dropped at a bound (`drop-oldest`) or for their age, ever; survives restarts. */
  dropped: number;
  /** Values moved to quarantine, ever (as `LevelCache.quarantineCount()`). */
  quarantined: number;
  /**
   * At a bound now: the outbox holds maxRecords or maxBytes, or the latest group of appends had to
   * refuse or drop records, or the latest write failed with a full disk (until records are removed
   * or expired, or a group of appends fits again).
   */
  full: boolean;
  /** When the outbox was last compacted (RFC 3339), null when never; survives restarts. */
  lastCompactionAt: string | null;
}

/** Logs dropped records at warn: how many and their seq range, never their content. */
export function logDropped(log: Logger, dropped: Dropped[], why: string): void {
  const firstSeq = dropped[0]?.seq;
  const lastSeq = dropped.at(-1)?.seq;
  log.warn({ dropped: dropped.length, firstSeq, lastSeq }, `cache records dropped: ${why}`);
}

/** A dropped record: its seq and its bytes of JSON. */
export interface Dropped {
  seq: number;
  bytes: number;
}

/** A group of appends as it will be written; `batch` is undefined when there is nothing to write. */
export interface AppendPlan {
  batch: Batch | undefined;
  next: Backlog;
  /** Per record, in order: undefined when it is stored, the ATTACHE_CACHE_FULL error when refused. */
  outcomes: (GatewayError | undefined)[];
  /** Records dropped to make room, oldest first (stored ones, then earlier records of this group). */
  dropped: Dropped[];
}

interface Accepted {
  seq: number;
  /** Its JSON in UTF-8, encoded once: its length is what the bounds count, its bytes are what is sealed. */
  plain: Buffer;
  /** Bytes of `plain`. */
  bytes: number;
}

function fullError(backlog: Backlog, limits: CacheLimits, bytes: number): GatewayError {
  const bound =
    backlog.records + 1 > limits.maxRecords
      ? `maxRecords ${limits.maxRecords} reached`
      : `a record of ${bytes} bytes does not fit in maxBytes ${limits.maxBytes} (${backlog.bytes} used)`;
  return new GatewayError('ATTACHE_CACHE_FULL', `the cache is full: ${bound}`);
}

/**
 * Decides, record by record in order, which of a group of appends fit within `limits`, and builds
 * the one batch that stores them (each record's JSON encoded and sealed once), deletes the records
 * dropped to make room (`drop-oldest`) and writes the new counters. Gives the stored records their seqs, in order, from `backlog.nextSeq`;
 * a refused record uses none. A record larger than maxBytes on its own is refused under either policy.
 */
export async function planAppend(
  database: Database,
  backlog: Backlog,
  records: AttacheRecord[],
  limits: CacheLimits,
): Promise<AppendPlan> {
  const { db, outbox, sealer } = database;
  const next = { ...backlog };
  const outcomes: (GatewayError | undefined)[] = [];
  const accepted: Accepted[] = [];
  const dropped: Dropped[] = [];
  /** Keys of the stored records dropped to make room. */
  const drops: string[] = [];
  // Opened only when a record must be dropped: most groups never read the outbox.
  let stored: { next(): Promise<[string, Buffer] | undefined>; close(): Promise<void> } | undefined;
  const nextStored = () => {
    stored ??= outbox.iterator();
    return stored.next();
  };
  const fits = (bytes: number): boolean =>
    next.records + 1 <= limits.maxRecords && next.bytes + bytes <= limits.maxBytes;
  try {
    for (const record of records) {
      record.seq = next.nextSeq;
      const plain = Buffer.from(JSON.stringify(record), 'utf8');
      const bytes = plain.length;
      let room = fits(bytes);
      if (!room && limits.whenFull === 'drop-oldest' && bytes <= limits.maxBytes) {
        room = await makeRoom(next, dropped, accepted, nextStored, () => fits(bytes), drops);
      }
      if (!room) {
        outcomes.push(fullError(next, limits, bytes));
        continue;
      }
      accepted.push({ seq: record.seq, plain, bytes });
      outcomes.push(undefined);
      next.nextSeq++;
      next.records++;
      next.bytes += bytes;
    }
  } finally {
    await stored?.close();
  }
  if (accepted.length === 0 && dropped.length === 0) return { batch: undefined, next, outcomes, dropped };
  const batch = db.batch();
  for (const key of drops) batchDel(batch, 'outbox', key);
  for (const { seq, plain } of accepted) {
    const key = seqKey(seq);
    batchPut(batch, 'outbox', key, sealer.seal(levelKey('outbox', key), plain));
  }
  next.dropped += dropped.length;
  // The counters under their full key (`!meta!outbox`) in meta's JSON: abstract-level clones the
  // options of an operation that has some ({ sublevel }) on its slow path, once per group.
  batch.put(levelKey('meta', backlogKey), Buffer.from(JSON.stringify(next), 'utf8'));
  return { batch, next, outcomes, dropped };
}

/**
 * Drops oldest records until `fits()`: stored ones first (their keys added to `drops`), then records
 * accepted earlier in this group (never written). False when nothing is left to drop.
 */
async function makeRoom(
  next: Backlog,
  dropped: Dropped[],
  accepted: Accepted[],
  nextStored: () => Promise<[string, Buffer] | undefined>,
  fits: () => boolean,
  drops: string[],
): Promise<boolean> {
  while (!fits()) {
    const entry = await nextStored();
    let oldest: Dropped | undefined;
    if (entry) {
      drops.push(entry[0]);
      oldest = { seq: parseSeqKey(entry[0]), bytes: plainLength(entry[1]) };
    } else {
      const pending = accepted.shift();
      oldest = pending && { seq: pending.seq, bytes: pending.bytes };
    }
    if (!oldest) return false;
    dropped.push(oldest);
    next.records--;
    next.bytes -= oldest.bytes;
  }
  return true;
}

/** errno texts LevelDB puts in its IO error messages (strerror), and Node's codes, for a full disk. */
const diskFullText = /No space left on device|File too large|Disk quota exceeded/;
const diskFullCodes = new Set(['ENOSPC', 'EFBIG', 'EDQUOT']);

/**
 * True when a write failed because the disk (or the file size limit, or the quota) is full.
 * LevelDB reports it as LEVEL_IO_ERROR whose message carries strerror's text, e.g.
 * `IO error: /var/lib/attache/cache/000005.log: No space left on device`.
 */
export function isDiskFull(err: unknown): boolean {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (diskFullCodes.has(String(e.code)) || diskFullText.test(String(e.message))) return true;
    e = e.cause as typeof e;
  }
  return false;
}
