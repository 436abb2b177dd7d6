import type { AttacheRecord, Logger } from '@attache/core';
import { type Dropped, logDropped } from './bounds.js';
import { type Backlog, type Batch, backlogKey, batchDel, type Database } from './database.js';
import type { DatabaseSession } from './database-session.js';
import { parseSeqKey, seqKey } from './seq-key.js';
import { levelKey, plainLength } from './value-sealer.js';

/** Most records one expiry batch deletes; a larger expiry takes several batches. */
export const expiryBatchRecords = 10_000;

/** A record's capture time in ms, or undefined when it cannot be trusted (clock not synchronized). */
function capturedMs(record: AttacheRecord): number | undefined {
  if (!record.clock.synchronized) return undefined;
  const ms = Date.parse(record.capturedAt);
  return Number.isNaN(ms) ? undefined : ms;
}

/** What one expiry step found: the batch (undefined when nothing is to drop) and where to resume. */
export interface ExpiryPlan {
  batch: Batch | undefined;
  next: Backlog;
  dropped: Dropped[];
  /**
   * Every record below this seq that is left is kept by expiry whatever the time (clock not
   * synchronized, or failing authentication): the next step can start here.
   */
  resumeSeq: number;
}

/**
 * The batch that deletes the records captured before `cutoffMs`, walking the outbox from seq
 * `fromSeq` and stopping at the first record captured at or after it, or after `most` records.
 * Records with an unsynchronized clock, and values that fail authentication (quarantined by `read`
 * and `stats`), are passed over and kept.
 */
export async function expireBatch(
  database: Database,
  backlog: Backlog,
  options: { cutoffMs: number; most: number; fromSeq: number },
): Promise<ExpiryPlan> {
  const { db, outbox, meta, sealer } = database;
  const dropped: Dropped[] = [];
  const batch = db.batch();
  let resumeSeq = backlog.nextSeq;
  for await (const [key, value] of outbox.iterator({ gte: seqKey(options.fromSeq) })) {
    const json = sealer.open(levelKey('outbox', key), value);
    if (json === undefined) continue;
    const ms = capturedMs(JSON.parse(json.toString('utf8')) as AttacheRecord);
    if (ms === undefined) continue;
    if (ms >= options.cutoffMs || dropped.length >= options.most) {
      resumeSeq = parseSeqKey(key);
      break;
    }
    batchDel(batch, 'outbox', key);
    dropped.push({ seq: parseSeqKey(key), bytes: plainLength(value) });
  }
  if (dropped.length === 0) {
    await batch.close();
    return { batch: undefined, next: backlog, dropped, resumeSeq };
  }
  const next = {
    ...backlog,
    records: backlog.records - dropped.length,
    bytes: backlog.bytes - dropped.reduce((sum, d) => sum + d.bytes, 0),
    dropped: backlog.dropped + dropped.length,
  };
  batch.put(backlogKey, next, { sublevel: meta });
  return { batch, next, dropped, resumeSeq };
}

/**
 * One expiry step, to run among the writes: deletes (one synced batch) the records `expireBatch`
 * finds, updates the session's counters and logs the drop at warn. Resolves with how many were
 * dropped and the seq where the next step starts (unchanged when the write fails: it rejects).
 */
export async function expireStep(
  session: DatabaseSession,
  database: Database,
  options: { cutoffMs: number; fromSeq: number; log: Logger; why: string },
): Promise<{ dropped: number; resumeSeq: number }> {
  const plan = await expireBatch(database, session.backlog, { ...options, most: expiryBatchRecords });
  if (!plan.batch) return { dropped: 0, resumeSeq: plan.resumeSeq };
  await session.commit(plan.batch, plan.next, `expiry of ${plan.dropped.length} records`);
  session.atBound = false;
  logDropped(options.log, plan.dropped, options.why);
  return { dropped: plan.dropped.length, resumeSeq: plan.resumeSeq };
}
