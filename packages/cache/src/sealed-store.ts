import type { AttacheRecord, BacklogStats, StoredRecord } from '@attache/core';
import { type Backlog, type Database, lastSeqOf } from './database.js';
import { quarantineKey, type Suspect } from './quarantine.js';
import { parseSeqKey, seqKey } from './seq-key.js';
import { levelKey } from './value-sealer.js';

/** The plaintext of a sealed value as text; undefined when it fails authentication. */
function openText({ sealer }: Database, sublevel: Suspect['sublevel'], key: string, value: Buffer) {
  return sealer.open(levelKey(sublevel, key), value)?.toString('utf8');
}

/**
 * Records with seq > `afterSeq` that pass authentication, at most `limit`, at most `maxBytes` of
 * JSON but at least one. Records that fail are skipped and returned as `suspects`.
 */
export async function readRecords(
  database: Database,
  options: { afterSeq: number; limit: number; maxBytes: number },
): Promise<{ records: StoredRecord[]; suspects: Suspect[] }> {
  const records: StoredRecord[] = [];
  const suspects: Suspect[] = [];
  let bytes = 0;
  for await (const [key, value] of database.outbox.iterator({ gt: seqKey(options.afterSeq) })) {
    const json = openText(database, 'outbox', key, value);
    if (json === undefined) {
      suspects.push({ sublevel: 'outbox', key, value });
      continue;
    }
    bytes += Buffer.byteLength(json, 'utf8');
    if (records.length > 0 && bytes > options.maxBytes) break;
    records.push({ seq: parseSeqKey(key), json });
    if (records.length >= options.limit) break;
  }
  return { records, suspects };
}

/** The first record of the outbox that passes authentication, and the records before it that fail. */
export async function firstRecord(
  database: Database,
): Promise<{ first: AttacheRecord | undefined; suspects: Suspect[] }> {
  const suspects: Suspect[] = [];
  for await (const [key, value] of database.outbox.iterator()) {
    const json = openText(database, 'outbox', key, value);
    if (json !== undefined) return { first: JSON.parse(json) as AttacheRecord, suspects };
    suspects.push({ sublevel: 'outbox', key, value });
  }
  return { first: undefined, suspects };
}

/** The stats of the outbox: `backlog`'s counters, the first and last seq, the oldest `capturedAt`. */
export async function backlogStats(
  database: Database,
  backlog: Backlog,
  first: AttacheRecord | undefined,
): Promise<BacklogStats> {
  const { nextSeq, records, bytes } = backlog;
  if (!first) return { records, bytes, firstSeq: null, lastSeq: null, oldestCapturedAt: null, nextSeq };
  const lastSeq = await lastSeqOf(database);
  return { records, bytes, firstSeq: first.seq, lastSeq, oldestCapturedAt: first.capturedAt, nextSeq };
}

/**
 * The JSON value sealed under `key` in `tokens` or `state`: `{ value }` when it passes
 * authentication, `{ suspect }` when it fails, `{}` when there is none.
 */
export async function getSealed<T>(
  database: Database,
  sublevel: 'tokens' | 'state',
  key: string,
): Promise<{ value?: T; suspect?: Suspect }> {
  const value = await database[sublevel].get(key);
  if (value === undefined) return {};
  const json = openText(database, sublevel, key, value);
  return json === undefined ? { suspect: { sublevel, key, value } } : { value: JSON.parse(json) as T };
}

/**
 * Seals `value` as JSON under `key` in `tokens` or `state` and writes it synced. `replaced`, a
 * suspect found under that key, moves to `quarantine` in the same batch.
 */
export function putSealed(
  database: Database,
  sublevel: 'tokens' | 'state',
  key: string,
  value: unknown,
  replaced?: Suspect,
): Promise<void> {
  const plain = Buffer.from(JSON.stringify(value), 'utf8');
  const batch = database.db.batch();
  batch.put(key, database.sealer.seal(levelKey(sublevel, key), plain), { sublevel: database[sublevel] });
  if (replaced) batch.put(quarantineKey(replaced), replaced.value, { sublevel: database.quarantine });
  return batch.write({ sync: true });
}
