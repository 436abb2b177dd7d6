// `@attache/gateway/stored-status`: what `attache status` needs when no gateway runs (it then opens
// the cache itself), and no more: imported by name, not through the package's main entry, whose
// every export (the gateway, its logger, the export writer) a dynamic import would load
// (bench/README.md, "Command start"). Also exported by the package's main entry.
import { type AttacheConfig, nullLogger } from '@attache/core';
import { openCache } from './open-cache.js';
import { type GatewayStatus, readStatus } from './status.js';
import { WindowRunner } from './window-runner.js';

/**
 * The status of a stopped gateway, read from its cache and windows (`running: false`). Rejects as
 * {@link openCache} does, e.g. `ATTACHE_CACHE_LOCKED` while a gateway holds the cache.
 */
export async function readStoredStatus(config: AttacheConfig): Promise<GatewayStatus> {
  const cache = await openCache(config, nullLogger);
  const windows = new WindowRunner({ config, cache, logger: nullLogger });
  try {
    await windows.openRoutes();
    return await readStatus(config, cache, windows);
  } finally {
    await windows.closeRoutes();
    await cache.close();
  }
}
