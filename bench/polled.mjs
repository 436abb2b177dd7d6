// `node bench/polled.mjs`: devices that must be asked, polled every second (issue 19): a MEDIBUS
// ventilator, then an IntelliVue monitor. Each simulator sits on the device end of a socat pty; the
// real serial adapter, driver, normalizer and encrypted LevelCache (synced writes, the default
// group-commit interval) on the other end, in this process. Reports the CPU per poll cycle and as a share of one core, and the latency from
// the device writing its data reply to that reading being durably stored, p50/p99. Nothing is
// asserted: figures vary with the machine. `BENCH_SECONDS` (default 60) sets each run,
// `BENCH_PERIOD_MS` (default 1000) the poll period.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Rs232Adapter } from '@attache/adapter-rs232';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { validateConfig } from '@attache/core';
import { IntelliVueMonitorSimulator, MedibusDeviceSimulator, openPtyPair } from '@attache/devkit';
import { IntelliVueDriver } from '@attache/intellivue';
import { MedibusDriver } from '@attache/medibus';
import { ReadingNormalizer } from '@attache/normalizer';

const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const periodMs = Number(process.env.BENCH_PERIOD_MS ?? 1000);
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

const kinds = {
  medibus: {
    what: 'MEDIBUS (measurements, alarms, settings)',
    port: { baudRate: 19200, parity: 'even' },
    simulator: (path, onData) =>
      new MedibusDeviceSimulator({ path, onReply: (command) => command === '$' && onData() }),
    driver: (format) => new MedibusDriver({ format }),
  },
  intellivue: {
    what: 'IntelliVue (numerics, alerts)',
    port: { baudRate: 115200 },
    simulator: (path, onData) =>
      new IntelliVueMonitorSimulator({ path, onReply: (objectType) => objectType === 6 && onData() }),
    driver: (format) => new IntelliVueDriver({ format }),
  },
};

async function bench(kind) {
  const spec = kinds[kind];
  const dir = await mkdtemp(join(tmpdir(), `attache-bench-${kind}-`));
  const pty = await openPtyPair(join(dir, 'pty'));
  const replies = [];
  const sim = spec.simulator(pty.devicePath, () => replies.push(performance.now()));
  await sim.open();
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-bench-polled', dataDir: join(dir, 'data') },
    devices: [
      {
        id: kind,
        adapter: 'rs232',
        port: { path: pty.gatewayPath, ...spec.port },
        format: { kind, poll: { periodMs } },
      },
    ],
  });
  const device = config.devices[0];
  const keyring = await loadOrCreateKeyring(join(dir, 'keys', 'cache.key'));
  const cache = new LevelCache({
    path: join(dir, 'cache'),
    keyring,
    commitIntervalMs: config.cache.commitIntervalMs,
  });
  await cache.open();
  const normalizer = new ReadingNormalizer({
    gatewayId: 'gw-bench-polled',
    devices: config.devices,
    tokenizer: { token: async () => 'pt_unused' },
    clock: {
      provenance: (monotonicMs) => ({
        synchronized: true,
        bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10',
        monotonicMs,
      }),
    },
  });
  const latencies = [];
  const stores = [];
  let measured = 0;
  const adapter = new Rs232Adapter({
    device,
    driver: spec.driver(device.format),
    sink: async (reading) => {
      const index = reading.event === undefined ? measured++ : undefined;
      const start = performance.now();
      await cache.append(await normalizer.normalize(reading));
      if (index === undefined) return;
      const end = performance.now();
      latencies.push(end - replies[index]);
      stores.push(end - start);
    },
  });
  await adapter.start();
  // Warm up (initialization, first cycles, JIT), then measure.
  await new Promise((r) => setTimeout(r, 3 * periodMs));
  const cyclesBefore = replies.length;
  latencies.length = 0;
  stores.length = 0;
  const skip = measured;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const elapsed = performance.now() - t0;
  const cycles = replies.length - cyclesBefore;
  await adapter.stop();
  await cache.close();
  await sim.close();
  await pty.close();
  await rm(dir, { recursive: true, force: true });

  const cpuMs = (cpu.user + cpu.system) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const storeSorted = stores.sort((a, b) => a - b);
  console.log(
    `${spec.what}, polled every ${fmt(periodMs)} ms for ${fmt(elapsed / 1000, 1)} s: ${fmt(cycles)} cycles, ` +
      `${fmt(measured - skip)} sets stored, ${adapter.status().malformed} malformed`,
  );
  console.log(
    `  CPU (driver, adapter, normalizer, cache and the simulator, one process): ${fmt(cpuMs / cycles, 2)} ms per cycle = ` +
      `${fmt((100 * cpuMs) / elapsed, 2)} % of one core`,
  );
  console.log(
    `  device reply -> durable store: p50 ${fmt(pct(sorted, 50), 2)} ms, p99 ${fmt(pct(sorted, 99), 2)} ms, ` +
      `max ${fmt(sorted.at(-1), 2)} ms (${sorted.length} replies)`,
  );
  console.log(
    `  of which normalize + durable append: p50 ${fmt(pct(storeSorted, 50), 2)} ms, p99 ${fmt(pct(storeSorted, 99), 2)} ms`,
  );
}

for (const kind of (process.env.BENCH_DEVICES ?? 'medibus,intellivue').split(',')) await bench(kind);
