import { type AttacheRecord, checkRecord, GatewayError } from '@attache/core';
import { type Backlog, type Batch, backlogKey, batchPut, type Database } from './database.js';
import { isSeq, seqKey } from './seq-key.js';
import { levelKey } from './value-sealer.js';

/** The `state` key under which the time of the last compaction is kept (sealed, like any state). */
export const compactionStateKey = 'cache:lastCompactionAt';

// In Node.js `Level` is classic-level's ClassicLevel, whose `compactRange` the `level` typings omit.
type Compactable = { compactRange(start: string, end: string): Promise<void> };

/**
 * Compacts the outbox's key range (`!outbox!` up to `!outbox"`, the next prefix), or only the seqs
 * up to `upToSeq`: LevelDB rewrites the tables that overlap it without the deleted records and
 * their tombstones, so a drained outbox gives its space back. Other sublevels are touched only where
 * they share a table.
 */
export async function compactOutbox({ db }: Database, upToSeq?: number): Promise<void> {
  const end = upToSeq === undefined ? '!outbox"' : levelKey('outbox', seqKey(upToSeq));
  await (db as unknown as Compactable).compactRange(levelKey('outbox', ''), end);
}

/** A restore as it will be written: the batch (undefined when every record is already stored). */
export interface RestorePlan {
  batch: Batch | undefined;
  next: Backlog;
  /** Records written. */
  stored: number;
  /** Records whose seq is already in the outbox (left as they are). */
  skipped: number;
}

/** Throws ATTACHE_MALFORMED (with `issues`) unless each record satisfies record.schema.json with a seq. */
function checkRestored(records: AttacheRecord[]): void {
  for (const record of records) {
    const issues = isSeq(record?.seq)
      ? checkRecord(record)
      : [{ path: '/seq', message: 'must be an integer >= 1' }];
    if (issues.length > 0) {
      const list = issues.map((i) => `${i.path} ${i.message}`).join('; ');
      throw new GatewayError('ATTACHE_MALFORMED', `restored record is invalid: ${list}`, { issues });
    }
  }
}

/**
 * The batch that stores records under their own seqs (an import from another cache), skipping the
 * seqs already waiting, and the new counters; `nextSeq` rises above the highest seq restored.
 */
export async function planRestore(
  database: Database,
  backlog: Backlog,
  records: AttacheRecord[],
): Promise<RestorePlan> {
  checkRestored(records);
  const { db, outbox, meta, sealer } = database;
  const next = { ...backlog };
  const batch = db.batch();
  const seen = new Set<number>();
  let stored = 0;
  let skipped = 0;
  for (const record of records) {
    const key = seqKey(record.seq);
    if (seen.has(record.seq) || (await outbox.has(key))) {
      skipped++;
      continue;
    }
    seen.add(record.seq);
    const json = Buffer.from(JSON.stringify(record), 'utf8');
    batchPut(batch, 'outbox', key, sealer.seal(levelKey('outbox', key), json));
    next.records++;
    next.bytes += json.length;
    next.nextSeq = Math.max(next.nextSeq, record.seq + 1);
    stored++;
  }
  if (stored === 0) {
    await batch.close();
    return { batch: undefined, next, stored, skipped };
  }
  batch.put(backlogKey, next, { sublevel: meta });
  return { batch, next, stored, skipped };
}
