// `@attache/gateway/stored-status`: what `attache status` needs when no gateway runs (it then reads
// the cache itself), and no more: imported by name, not through the package's main entry, whose
// every export (the gateway, its logger, the export writer) a dynamic import would load
// (bench/README.md, "Command start"). Also exported by the package's main entry.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readKeyring, readStoredCache, type StoredCacheView } from '@attache/cache/stored-view';
import { type AttacheConfig, GatewayError, nullLogger } from '@attache/core';
import { gatewayPaths } from './paths.js';
import { type GatewayStatus, policiesOf, readStatus } from './status.js';
import type { WindowRecord } from './window-runner.js';
import { lastWindowKey } from './window-state.js';

/**
 * The status of a stopped gateway, read from its cache and its routes' outboxes (`running: false`),
 * changing nothing: a cache or key file that does not exist yet reads as empty and is not created
 * (the gateway creates them at its start). A corrupt cache is opened as the gateway opens it
 * (repaired). Rejects ATTACHE_CACHE_LOCKED while another process holds a cache, ATTACHE_CACHE_KEY
 * when the cache holds data but its key file is missing or unusable.
 */
export async function readStoredStatus(config: AttacheConfig): Promise<GatewayStatus> {
  const paths = gatewayPaths(config);
  const keyring = await readKeyring(paths.keyFile);
  const read = async (
    path: string,
    stateKeys: string[] = [],
  ): Promise<StoredCacheView | null | undefined> => {
    if (keyring === undefined) {
      if (hasDatabase(path)) {
        throw new GatewayError(
          'ATTACHE_CACHE_KEY',
          'the cache holds data but its key file is missing: restore cache.keyFile (a new key could not read the backlog)',
        );
      }
      return null;
    }
    const { maxRecords, maxBytes, maxAgeDays, whenFull } = config.cache;
    const view = await readStoredCache({
      path,
      keyring,
      limits: { maxRecords, maxBytes, maxAgeMs: maxAgeDays * 86_400_000, whenFull },
      reserveBytes: config.cache.diskReserveBytes,
      stateKeys,
    });
    return view ?? (hasDatabase(path) ? undefined : null);
  };
  const main = await read(paths.cache, [lastWindowKey]);
  const routes: Record<string, GatewayStatus['backlog']> = {};
  for (const route of config.uplink?.routes ?? []) {
    const view = await read(join(config.gateway.dataDir, 'routes', route.name));
    if (view === undefined) return readOpenedStatus(config); // corrupt: the gateway's open repairs it
    routes[route.name] = view?.backlog ?? emptyBacklog;
  }
  if (main === undefined) return readOpenedStatus(config);
  return {
    gatewayId: config.gateway.id,
    running: false,
    startedAt: null,
    backlog: main?.backlog ?? emptyBacklog,
    cache: main?.health ?? { dropped: 0, quarantined: 0, full: false, lastCompactionAt: null },
    lastWindow: (main?.state[lastWindowKey] as WindowRecord | undefined) ?? null,
    uplink: {
      configured: config.uplink !== undefined,
      windowOpen: false,
      everySeconds: config.uplink?.window.everySeconds || null,
      policies: policiesOf(config),
    },
    adapters: [],
    ...(Object.keys(routes).length > 0 ? { routes } : {}),
  };
}

const emptyBacklog: GatewayStatus['backlog'] = {
  records: 0,
  bytes: 0,
  firstSeq: null,
  lastSeq: null,
  oldestCapturedAt: null,
  nextSeq: 1,
};

/** Whether LevelDB has a database at `path` (its CURRENT file). */
function hasDatabase(path: string): boolean {
  return existsSync(join(path, 'CURRENT'));
}

/** The status read by opening the caches as the gateway does (which repairs a corrupt one). */
async function readOpenedStatus(config: AttacheConfig): Promise<GatewayStatus> {
  const { openCache } = await import('./open-cache.js');
  const { WindowRunner } = await import('./window-runner.js');
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
