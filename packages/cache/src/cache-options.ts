import type { Clock, Logger } from '@attache/core';
import type { CacheLimits } from './bounds.js';
import type { CacheKeyring } from './keyring.js';

/** Options of {@link LevelCache}. */
export interface LevelCacheOptions {
  /** Directory of the LevelDB database; created if missing. */
  path: string;
  /** The keys that seal every stored value (see {@link loadOrCreateKeyring}); new values use `currentId`. */
  keyring: CacheKeyring;
  /**
   * Group commit (see the README, "Group commit"). Default 0: an append reaching an idle cache is
   * written at once; appends arriving while a write is in flight share the next synced write. Above
   * 0: the first append of an idle cache waits this many ms for others (fewer writes, longer ACKs).
   */
  commitIntervalMs?: number;
  /** Sets the `commitIntervalMs` timer; tests pass a ManualClock. Default: Node's timers. */
  clock?: Pick<Clock, 'setTimeout'>;
  /** Most records per synced write (default 1000). */
  maxBatchRecords?: number;
  /** Where the cache logs (default nullLogger). Never receives patient data. */
  logger?: Logger;
  /** Bounds of the outbox (see the README, "Bounds"). Default: none. */
  limits?: CacheLimits;
  /**
   * When `remove()` empties the outbox and at least this many records were removed since the last
   * compaction (or open), the outbox's key range is compacted in the background (default 10,000;
   * 0 = never by itself, call `compact()`).
   */
  compactAfterRecords?: number;
  /**
   * While a drain has not emptied the outbox, the range it removed is compacted in the background
   * after every this many records removed (default 10,000; 0 = never): LevelDB then deletes the
   * emptied table files and unmaps them, which bounds the gateway's RSS during a long drain and gives
   * the disk space back as it goes (see the README, "Memory").
   */
  compactDrainedEvery?: number;
  /**
   * Bytes kept free for the cache in a reserve file in `path`, released when the disk is found full
   * so the cache can still open, read and drain; appends are refused until it is made again (see the
   * README, "Disk full: the reserve"). Default 0: no reserve.
   */
  reserveBytes?: number;
  /** How often, in ms, free space is checked while the reserve is released (default 5000). */
  reserveCheckMs?: number;
  /**
   * LevelDB's write buffer (its memtable), bytes (default LevelDB's own 4 MiB): appends collect in
   * it, in memory, until it is this full and written out as a table. An idle gateway's memtable
   * grows by a reading at a time, so its size is memory the gateway holds for hours; a smaller one
   * costs bulk appends CPU (see the README, "Memory").
   */
  writeBufferBytes?: number;
  /**
   * LevelDB's block cache, bytes (default 1 MiB; LevelDB's own default is 8 MiB): table blocks read
   * from disk are kept in it for later reads (see the README, "Memory").
   */
  blockCacheBytes?: number;
}

/** {@link LevelCacheOptions.writeBufferBytes}'s default. */
export const defaultWriteBufferBytes = 4 << 20;
/** {@link LevelCacheOptions.blockCacheBytes}'s default. */
export const defaultBlockCacheBytes = 1 << 20;

/** Options of {@link LevelCache.append}. */
export interface AppendOptions {
  /**
   * Identifies the reading across re-sends by its device (e.g. a hash of the message): a reading
   * whose key was stored recently is not stored again.
   */
  idempotencyKey?: string;
}
