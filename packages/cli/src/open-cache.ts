import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import type { AttacheConfig, Logger } from '@attache/core';
import { GatewayError } from '@attache/core';
import { gatewayPaths } from './paths.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Opens the cache of a gateway's data directory (creating the directory, owner-only) with its data
 * key; `path` (default `<dataDir>/cache`) for a route's outbox. A missing key file is created on first
 * start, but never beside an existing cache: a new key could not read the backlog, so the gateway
 * refuses to start until the key file is restored.
 */
export async function openCache(
  config: AttacheConfig,
  logger: Logger,
  path = gatewayPaths(config).cache,
): Promise<LevelCache> {
  await mkdir(config.gateway.dataDir, { recursive: true, mode: 0o700 });
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
    logger,
  });
  await cache.open();
  return cache;
}
