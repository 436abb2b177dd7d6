import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import type { AttacheConfig, Logger } from '@attache/core';
import { GatewayError, isGatewayError, mkdirDurably } from '@attache/core';
import { gatewayPaths } from './paths.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** How long the gateway waits for a cache another process holds (an `attache` command reading it). */
export const gatewayLockWaitMs = 15_000;
const lockRetryMs = 200;

/**
 * Opens the cache of a gateway's data directory (creating the directory, owner-only) with its data
 * key; `path` (default `<dataDir>/cache`) for a route's outbox. A missing key file is created on first
 * start, but never beside an existing cache: a new key could not read the backlog, so the gateway
 * refuses to start until the key file is restored. While another process holds the cache (say
 * `attache status` reading it as the service starts), retries for up to `waitLockedMs`, then
 * rejects ATTACHE_CACHE_LOCKED.
 */
export async function openCache(
  config: AttacheConfig,
  logger: Logger,
  path = gatewayPaths(config).cache,
  waitLockedMs = 0,
): Promise<LevelCache> {
  await mkdirDurably(config.gateway.dataDir);
  const paths = gatewayPaths(config);
  if (!(await exists(paths.keyFile)) && (await exists(join(path, 'CURRENT')))) {
    throw new GatewayError(
      'ATTACHE_CACHE_KEY',
      'the cache holds data but its key file is missing: restore cache.keyFile (a new key could not read the backlog)',
    );
  }
  const { maxRecords, maxBytes, maxAgeDays, whenFull } = config.cache;
  const cache = new LevelCache({
    path,
    limits: { maxRecords, maxBytes, maxAgeMs: maxAgeDays * 86_400_000, whenFull },
    keyring: await loadOrCreateKeyring(paths.keyFile),
    commitIntervalMs: config.cache.commitIntervalMs,
    maxBatchRecords: config.cache.maxBatchRecords,
    reserveBytes: config.cache.diskReserveBytes,
    logger,
  });
  const deadline = Date.now() + waitLockedMs;
  for (let waited = false; ; waited = true) {
    try {
      await cache.open();
      return cache;
    } catch (err) {
      if (!isGatewayError(err, 'ATTACHE_CACHE_LOCKED') || Date.now() + lockRetryMs > deadline) throw err;
      if (!waited)
        logger.warn({ path, waitLockedMs }, 'the cache is in use by another process: waiting for it');
    }
    await new Promise((resolve) => setTimeout(resolve, lockRetryMs));
  }
}
