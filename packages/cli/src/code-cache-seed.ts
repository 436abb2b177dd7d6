import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';

// For `attache --write-code-cache` (code-cache-writer.ts) only: the release ships it as an ES module
// of its own (scripts/bundle.mjs), so that bin.js, which every command loads, holds none of it.

/**
 * A cache holding one record in `dataDir`, so that the `status` profile's code cache holds the code
 * that reads a stored backlog (`attache status` with no gateway running reads nothing where there is
 * no cache yet).
 */
export async function storeOneRecord(dataDir: string): Promise<void> {
  const cache = new LevelCache({
    path: join(dataDir, 'cache'),
    keyring: await loadOrCreateKeyring(join(dataDir, 'keys', 'cache.key')),
  });
  await cache.open();
  try {
    await cache.append({
      gatewayId: 'code-cache',
      deviceId: 'monitor',
      adapter: 'ethernet',
      protocol: 'hl7-mllp',
      capturedAt: new Date().toISOString(),
      clock: { synchronized: false, bootId: '00000000-0000-4000-8000-000000000000', monotonicMs: 0 },
      observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 97, unit: '%', status: 'valid' }],
    });
  } finally {
    await cache.close();
  }
}
