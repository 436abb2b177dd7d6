import {
  type AttacheRecord,
  checkRecord,
  GatewayError,
  type PageOptions,
  type RecordDraft,
} from '@attache/core';
import type { CacheLimits } from './bounds.js';
import type { LevelCacheOptions } from './cache-options.js';
import { isSeq } from './seq-key.js';

/** Throws a TypeError naming the first bad option. */
export function checkOptions(options: LevelCacheOptions): void {
  if (typeof options?.path !== 'string' || options.path === '') {
    throw new TypeError('"path" must be a non-empty string');
  }
  const { keyring } = options;
  if (typeof keyring?.key !== 'function' || typeof keyring.currentId !== 'string') {
    throw new TypeError('"keyring" must be a CacheKeyring (see loadOrCreateKeyring)');
  }
  const { commitIntervalMs = 0, maxBatchRecords = 1 } = options;
  if (typeof commitIntervalMs !== 'number' || !(commitIntervalMs >= 0 && commitIntervalMs < 2 ** 31)) {
    throw new TypeError('"commitIntervalMs" must be a number of ms >= 0');
  }
  if (!Number.isSafeInteger(maxBatchRecords) || maxBatchRecords < 1) {
    throw new TypeError('"maxBatchRecords" must be an integer >= 1');
  }
  const { compactAfterRecords = 0, compactDrainedEvery = 0 } = options;
  if (!Number.isSafeInteger(compactAfterRecords) || compactAfterRecords < 0) {
    throw new TypeError('"compactAfterRecords" must be an integer >= 0');
  }
  if (!Number.isSafeInteger(compactDrainedEvery) || compactDrainedEvery < 0) {
    throw new TypeError('"compactDrainedEvery" must be an integer >= 0');
  }
  const { reserveBytes = 0, reserveCheckMs = 1 } = options;
  if (!Number.isSafeInteger(reserveBytes) || reserveBytes < 0) {
    throw new TypeError('"reserveBytes" must be an integer >= 0');
  }
  if (!Number.isSafeInteger(reserveCheckMs) || reserveCheckMs < 1 || reserveCheckMs >= 2 ** 31) {
    throw new TypeError('"reserveCheckMs" must be an integer of ms >= 1');
  }
  const { writeBufferBytes = 65_536, blockCacheBytes = 0 } = options;
  if (!Number.isSafeInteger(writeBufferBytes) || writeBufferBytes < 65_536 || writeBufferBytes > 2 ** 30) {
    throw new TypeError('"writeBufferBytes" must be an integer from 65536 to 2^30');
  }
  if (!Number.isSafeInteger(blockCacheBytes) || blockCacheBytes < 0 || blockCacheBytes > 2 ** 30) {
    throw new TypeError('"blockCacheBytes" must be an integer from 0 to 2^30');
  }
  if (options.limits !== undefined) checkLimits(options.limits);
}

/** Throws a TypeError naming the first bad field of `limits`. */
function checkLimits(limits: CacheLimits): void {
  const { maxRecords, maxBytes, maxAgeMs, whenFull } = limits ?? {};
  if (typeof maxRecords !== 'number' || !(maxRecords >= 1)) {
    throw new TypeError('"limits.maxRecords" must be a number >= 1');
  }
  if (typeof maxBytes !== 'number' || !(maxBytes >= 1)) {
    throw new TypeError('"limits.maxBytes" must be a number of bytes >= 1');
  }
  if (typeof maxAgeMs !== 'number' || !(maxAgeMs >= 0 && Number.isFinite(maxAgeMs))) {
    throw new TypeError('"limits.maxAgeMs" must be a number of ms >= 0');
  }
  if (whenFull !== 'refuse' && whenFull !== 'drop-oldest') {
    throw new TypeError('"limits.whenFull" must be "refuse" or "drop-oldest"');
  }
}

/** Throws a TypeError unless `value` is a non-empty string. */
export function checkKey(name: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new TypeError(`"${name}" must be a non-empty string`);
}

/** Throws a TypeError naming the first bad option of `read`. */
export function checkReadOptions(options: { afterSeq: number; limit: number; maxBytes: number }): void {
  const { afterSeq, limit, maxBytes } = options;
  if (!(afterSeq === 0 || isSeq(afterSeq))) throw new TypeError('"afterSeq" must be an integer >= 0');
  if (!isSeq(limit)) throw new TypeError('"limit" must be an integer >= 1');
  if (typeof maxBytes !== 'number' || !(maxBytes > 0)) throw new TypeError('"maxBytes" must be a number > 0');
}

/** The most room a page leaves on either side of its JSON (a batch's header is ~200 bytes). */
export const maxPageRoom = 4096;

/** Throws TypeError naming the option unless `options` are valid `readPage` options. */
export function checkPageOptions(options: PageOptions): void {
  checkReadOptions(options);
  const { room } = options;
  if (room === undefined) return;
  for (const side of ['before', 'after'] as const) {
    const bytes = room?.[side];
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > maxPageRoom)
      throw new TypeError(`"room.${side}" must be an integer from 0 to ${maxPageRoom}`);
  }
}

/**
 * The draft as a record, `seq` placed in schema order with a placeholder of 1 (the real one is set
 * when its group is committed). Throws ATTACHE_MALFORMED, with `issues`, unless the record satisfies
 * record.schema.json: unknown fields (say, a patient identifier) never reach the outbox.
 */
export function recordOf(draft: RecordDraft): AttacheRecord {
  // The leading fields are assigned again by `Object.assign`, in place: cheaper than a rest and a spread.
  const { gatewayId, deviceId, adapter, protocol } = draft;
  const record: AttacheRecord = Object.assign({ gatewayId, deviceId, adapter, protocol, seq: 1 }, draft);
  const issues = checkRecord(record);
  if (issues.length > 0) {
    const list = issues.map((i) => `${i.path} ${i.message}`).join('; ');
    throw new GatewayError('ATTACHE_MALFORMED', `record draft is invalid: ${list}`, { issues });
  }
  return record;
}
