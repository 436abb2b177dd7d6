import { GatewayError, type Logger } from '@attache/core';
import { type Backlog, type Batch, backlogKey, type Database } from './database.js';
import { parseSeqKey } from './seq-key.js';
import { plainLength, sealedKeyId } from './value-sealer.js';

/** A value that failed authentication, as found under its sublevel and key. */
export interface Suspect {
  sublevel: 'outbox' | 'tokens' | 'state';
  key: string;
  value: Buffer;
}

/** The key of a suspect in `quarantine`: where it was found, and when (RFC 3339), so none is overwritten. */
export function quarantineKey(suspect: Suspect): string {
  return `${suspect.sublevel}!${suspect.key}!${new Date().toISOString()}`;
}

/**
 * The batch that moves the suspects still stored as found to `quarantine`, deleting them where
 * they were (and updating the counters for outbox records); undefined when none is left.
 */
export async function quarantineBatch(
  database: Database,
  backlog: Backlog,
  suspects: Suspect[],
): Promise<{ batch: Batch; next: Backlog; moved: Suspect[] } | undefined> {
  const batch = database.db.batch();
  const moved: Suspect[] = [];
  const next = { ...backlog };
  for (const suspect of suspects) {
    const sublevel = database[suspect.sublevel];
    const stored = await sublevel.get(suspect.key);
    if (!stored?.equals(suspect.value)) continue; // removed or replaced meanwhile
    batch.put(quarantineKey(suspect), suspect.value, { sublevel: database.quarantine });
    batch.del(suspect.key, { sublevel });
    moved.push(suspect);
    if (suspect.sublevel !== 'outbox') continue;
    next.records = Math.max(0, next.records - 1);
    next.bytes = Math.max(0, next.bytes - plainLength(suspect.value));
  }
  if (moved.length === 0) {
    await batch.close();
    return undefined;
  }
  if (moved.some((s) => s.sublevel === 'outbox')) batch.put(backlogKey, next, { sublevel: database.meta });
  return { batch, next, moved };
}

/** Logs a quarantined value at error, ATTACHE_CACHE_TAMPERED: where it was and its key id, never what it holds. */
export function logQuarantined(log: Logger, { sublevel, key, value }: Suspect, outcome: string): void {
  const where = sublevel === 'outbox' ? { seq: parseSeqKey(key) } : sublevel === 'state' ? { key } : {};
  const err = new GatewayError('ATTACHE_CACHE_TAMPERED', `a ${sublevel} value failed authentication`);
  log.error(
    { err, sublevel, ...where, keyId: sealedKeyId(value) },
    `cache value failed authentication and was quarantined; ${outcome}`,
  );
}
