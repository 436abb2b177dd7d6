// `attache status` while no gateway runs reads the cache itself (@attache/cache/stored-view): what a
// technician sees must be the cache's truth (backlog, oldest reading's age, last window), it must
// create nothing (no key file, no database, no reserve), and a cache it cannot read quietly is
// still reported: a corrupt one repaired as the gateway would, a missing key named.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import type { RecordDraft } from '@attache/core';
import t, { type Test } from 'tap';
import { attache, type StatusJson } from './helpers/stack.js';

/** A config of a gateway that never ran here (its data directory is not there yet). */
async function stoppedGateway(t: Test): Promise<{ dir: string; data: string; config: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'attache-status-stopped-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, 'data');
  const config = join(dir, 'config.json');
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-ward4', dataDir: data },
      devices: [
        {
          id: 'monitor',
          adapter: 'ethernet',
          endpoint: { mode: 'listen', host: '127.0.0.1', port: 2575, allow: ['127.0.0.1'] },
          format: { kind: 'hl7-mllp' },
        },
      ],
    }),
  );
  return { dir, data, config };
}

const draft = (n: number, capturedAt: string): RecordDraft => ({
  gatewayId: 'gw-ward4',
  deviceId: 'monitor',
  adapter: 'ethernet',
  protocol: 'hl7-mllp',
  capturedAt,
  clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
  observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + n, unit: '%', status: 'valid' }],
});

/** Stores `count` records in the gateway's cache (the oldest captured 3 h ago), and a last window. */
async function storeBacklog(data: string, count: number): Promise<void> {
  const cache = new LevelCache({
    path: join(data, 'cache'),
    keyring: await loadOrCreateKeyring(join(data, 'keys', 'cache.key')),
  });
  await cache.open();
  const oldest = Date.now() - 3 * 3600_000;
  for (let n = 0; n < count; n++) await cache.append(draft(n, new Date(oldest + n * 1000).toISOString()));
  await cache.remove(1, 1);
  await cache.setState('lastWindow', {
    outcome: 'done',
    openedAt: '2026-12-05T10:00:00.000Z',
    closedAt: '2026-12-05T10:00:02.000Z',
    records: 1,
    messages: 1,
    bytes: 400,
    firstSeq: 1,
    lastSeq: 1,
    trigger: 'manual',
  });
  await cache.close();
}

const status = async (config: string) => {
  const run = await attache(['status', '--json', '--config', config]);
  return { ...run, json: run.code === 0 ? (JSON.parse(run.stdout) as StatusJson) : undefined };
};

t.test('a gateway that never ran: an empty backlog, and nothing created', async (t) => {
  const { data, config } = await stoppedGateway(t);
  const run = await status(config);
  t.equal(run.code, 0, run.stderr);
  t.match(run.json, { running: false, backlog: { records: 0, nextSeq: 1, oldestCapturedAt: null } });
  t.notOk(existsSync(data), 'no data directory, key file or cache made by status');
  const text = await attache(['status', '--config', config]);
  t.match(text.stdout, /^backlog: 0 records, 0 B, oldest -; next seq 1$/m);
});

t.test("a stopped gateway's backlog: counts, the oldest reading's age, the last window", async (t) => {
  const { data, config } = await stoppedGateway(t);
  await storeBacklog(data, 5);
  const before = readdirSync(join(data, 'cache')).filter((f) => f.startsWith('attache-'));
  const run = await status(config);
  t.equal(run.code, 0, run.stderr);
  t.match(run.json, {
    running: false,
    backlog: { records: 4, firstSeq: 2, lastSeq: 5, nextSeq: 6 },
    cache: { dropped: 0, quarantined: 0, full: false },
    lastWindow: { outcome: 'done', records: 1 },
  });
  const text = await attache(['status', '--config', config]);
  t.match(text.stdout, /^backlog: 4 records, [\d.]+ KiB, oldest 3 h; next seq 6$/m, 'the oldest is 3 h old');
  t.match(text.stdout, /^last window \[manual\] done after 2\.0 s: 1 records in 1 messages/m);
  t.same(
    readdirSync(join(data, 'cache')).filter((f) => f.startsWith('attache-')),
    before,
    'no disk reserve made by status',
  );
});

t.test('a corrupt cache is repaired and reported; a missing key file is named', async (t) => {
  const { data, config } = await stoppedGateway(t);
  await storeBacklog(data, 3);
  writeFileSync(join(data, 'cache', 'CURRENT'), 'torn');
  const repaired = await status(config);
  t.equal(repaired.code, 0, repaired.stderr);
  t.match(repaired.json, { running: false, backlog: { records: 2, firstSeq: 2, lastSeq: 3 } });

  rmSync(join(data, 'keys', 'cache.key'));
  const keyless = await status(config);
  t.equal(keyless.code, 1);
  t.match(keyless.stderr, /ATTACHE_CACHE_KEY: the cache holds data but its key file is missing/);
  t.notOk(existsSync(join(data, 'keys', 'cache.key')), 'no new key made (it could not read the backlog)');
});
