// Durable batched append, two ways on the same records: `attache` (LevelCache: schema check, JSON,
// AES-256-GCM per value, one synced batch per 1,000) or `classic-level` (bare classic-level from the
// peers' directory, the same JSON unencrypted, `batch()` with sync). Prints one JSON line:
// records/s and CPU µs per record. `node bench/peers/append.mjs attache|classic-level [records] [peersDir]`
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';

const [mode = 'attache', countArg = '100000', peersDir] = process.argv.slice(2);
const total = Number(countArg);
const group = 1000;

function draft(n) {
  return {
    gatewayId: 'gw-bench',
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + (n % 10), unit: '%', status: 'valid' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', system: 'MDC', value: 60 + (n % 40), unit: '/min', status: 'valid' },
    ],
  };
}

const dir = await mkdtemp(join(tmpdir(), 'attache-peer-append-'));
try {
  let append;
  let close;
  if (mode === 'classic-level') {
    const { ClassicLevel } = createRequire(join(peersDir, 'package.json'))('classic-level');
    const db = new ClassicLevel(join(dir, 'db'), { valueEncoding: 'utf8' });
    await db.open();
    let seq = 0;
    append = (drafts) =>
      db.batch(
        drafts.map((d) => {
          seq += 1;
          return { type: 'put', key: String(seq).padStart(16, '0'), value: JSON.stringify({ ...d, seq }) };
        }),
        { sync: true },
      );
    close = () => db.close();
  } else {
    const cache = new LevelCache({
      path: join(dir, 'db'),
      keyring: await loadOrCreateKeyring(join(dir, 'key')),
    });
    await cache.open();
    append = (drafts) => Promise.all(drafts.map((d) => cache.append(d)));
    close = () => cache.close();
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let n = 0; n < total; n += group) {
    await append(Array.from({ length: Math.min(group, total - n) }, (_, i) => draft(n + i)));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await close();
  console.log(JSON.stringify({ mode, perSecond: total / seconds, cpuUs: (cpu.user + cpu.system) / total }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
