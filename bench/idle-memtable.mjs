// What an idle gateway's cache holds in memory after hours of readings: a process opens a LevelCache
// and appends N records one at a time, each awaited (its own synced write, as a reading a second
// arrives), with an idempotency key each; its anonymous memory (/proc/self/smaps_rollup, after two
// full GCs) before and after. Taking turns, LevelDB's former default write buffer (4 MiB) and the
// cache's default (`writeBufferBytes`, 1 MiB): the memtable filled a reading at a time is the
// difference. Nothing is asserted.
//   node bench/idle-memtable.mjs [records] [rounds]     (default 6000 records, about 1.7 hours at a
//   reading a second, and 3 rounds)
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { boxEnv, unitStart } from './unit-start.mjs';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function child(writeBuffer, records) {
  const { LevelCache, loadOrCreateKeyring } = await import('@attache/cache');
  const anonymous = async () => {
    global.gc();
    global.gc();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const text = await readFile('/proc/self/smaps_rollup', 'utf8');
    return Number(/^Anonymous:\s+(\d+)/m.exec(text)?.[1]) / 1024;
  };
  const dir = await mkdtemp(join(tmpdir(), 'attache-bench-memtable-'));
  try {
    const keyring = await loadOrCreateKeyring(join(dir, 'cache.key'));
    const options = writeBuffer === 'default' ? {} : { writeBufferBytes: Number(writeBuffer) };
    const cache = new LevelCache({ path: join(dir, 'cache'), keyring, ...options });
    await cache.open();
    const draft = (n) => ({
      gatewayId: 'gw-idle',
      deviceId: 'spo2',
      adapter: 'rs232',
      protocol: 'kv-line',
      capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
      clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n * 1000 },
      observations: [
        { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 97, unit: '%', status: 'valid' },
        { code: 'MDC_PULS_OXIM_PULS_RATE', system: 'MDC', value: 72, unit: '/min', status: 'valid' },
      ],
    });
    // The first records warm up the code paths; the memory after them is the baseline.
    for (let n = 0; n < 200; n++) await cache.append(draft(n), { idempotencyKey: `reading-${n}` });
    const before = await anonymous();
    for (let n = 200; n < records; n++) await cache.append(draft(n), { idempotencyKey: `reading-${n}` });
    const after = await anonymous();
    await cache.close();
    process.stdout.write(JSON.stringify({ before, after }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  const records = Number(process.argv[2] ?? 6000);
  const rounds = Number(process.argv[3] ?? 3);
  const { flags, env } = await unitStart();
  const variants = { 'LevelDB default, 4 MiB': String(4 << 20), 'the cache default, 1 MiB': 'default' };
  const growth = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  const loads = [];
  for (let r = 0; r < rounds; r++) {
    for (const [name, writeBuffer] of Object.entries(variants)) {
      const self = fileURLToPath(import.meta.url);
      const args = [...flags, '--expose-gc', self, '--child', writeBuffer, String(records)];
      const { stdout } = await promisify(execFile)(process.execPath, args, { env: boxEnv(env) });
      const { before, after } = JSON.parse(stdout);
      growth[name].push(after - before);
      loads.push(loadavg()[0]);
    }
  }
  console.log(`anonymous memory grown over ${records} single appends, median of ${rounds} rounds in turn:`);
  for (const [name, list] of Object.entries(growth)) {
    console.log(
      `  write buffer ${name}: +${median(list).toFixed(1)} MB (${list.map((x) => x.toFixed(1)).join(' / ')})`,
    );
  }
  console.log(`  load average (1 min) ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}`);
}

if (process.argv[2] === '--child') await child(process.argv[3], Number(process.argv[4]));
else await main();
