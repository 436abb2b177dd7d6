// `make bench`: prints throughput and memory figures of the real pipeline on this machine. Nothing is
// asserted: figures vary with the machine, so they are reported, never used as pass/fail.
//   1. lines/s from a pty (socat) through the RS-232 adapter and normalizer into the cache (synced writes)
//   2. records/s from the cache to a local mosquitto (mTLS) with the SDK's AWS IoT flow control off and on
//   3. RSS of an idle `attache run` with one adapter, before and after its uplink has opened a window
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Rs232Adapter } from '@attache/adapter-rs232';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { validateConfig } from '@attache/core';
import { createTestPki, openPtyPair, profileFormat, startMosquitto, uplinkSettings } from '@attache/devkit';
import { LineDriver } from '@attache/line-formats';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';
import { IotCoreUplink } from '@attache/uplink';

const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'attache-bench-'));
const thingName = 'gw-bench';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

const device = {
  id: 'spo2-bench',
  adapter: 'rs232',
  port: { path: '/dev/null' },
  format: profileFormat('nonin'),
};

function config(extra) {
  return validateConfig({
    version: 1,
    gateway: { id: thingName, dataDir: join(dir, 'data') },
    devices: [device],
    ...extra,
  });
}

async function ptyToCache(lines, commitIntervalMs = 0) {
  const pty = await openPtyPair(join(dir, `pty-${commitIntervalMs}-${Date.now()}`));
  const cache = new LevelCache({
    path: join(dir, `cache-${commitIntervalMs}-${Date.now()}`),
    keyring: await loadOrCreateKeyring(join(dir, 'keys', 'cache.key')),
    commitIntervalMs,
  });
  await cache.open();
  const cfg = config({ devices: [{ ...device, port: { path: pty.gatewayPath } }] });
  const normalizer = new ReadingNormalizer({
    gatewayId: thingName,
    devices: cfg.devices,
    tokenizer: cache,
    clock: new SystemClock({ syncFile: cfg.gateway.clockSyncFile }),
  });
  const serial = cfg.devices[0];
  const { delimiter, maxLineBytes } = serial.port;
  const adapter = new Rs232Adapter({
    device: serial,
    driver: new LineDriver({ format: serial.format, adapter: 'rs232', delimiter, maxLineBytes }),
    sink: async (reading) => {
      await cache.append(await normalizer.normalize(reading));
    },
  });
  await adapter.start();
  while (adapter.status().state !== 'connected') await sleep(20);
  const text = Array.from({ length: lines }, (_, i) => `SPO2=${90 + (i % 10)} HR=${60 + (i % 40)}\r\n`).join(
    '',
  );
  const { createWriteStream } = await import('node:fs');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = createWriteStream(pty.devicePath);
  out.write(text);
  while (adapter.status().stored + adapter.status().malformed < lines) await sleep(5);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  out.destroy();
  await adapter.stop();
  const stats = await cache.stats();
  await cache.close();
  await pty.close();
  console.log(
    `pty -> cache: ${fmt(lines)} lines in ${seconds.toFixed(2)} s = ${fmt(lines / seconds)} lines/s; ` +
      `CPU ${fmt((cpu.user + cpu.system) / lines, 1)} µs/record; ${fmt(stats.bytes / stats.records)} B/record JSON; commitIntervalMs ${commitIntervalMs}`,
  );
}

async function cacheToBroker(records, flowControl, pki, broker) {
  const cache = new LevelCache({
    path: join(dir, `cache-${flowControl}`),
    keyring: await loadOrCreateKeyring(join(dir, 'keys', 'cache.key')),
  });
  await cache.open();
  const cfg = config({});
  const normalizer = new ReadingNormalizer({
    gatewayId: thingName,
    devices: cfg.devices,
    tokenizer: cache,
    clock: new SystemClock({ syncFile: cfg.gateway.clockSyncFile }),
  });
  const pending = [];
  for (let i = 0; i < records; i++) {
    const reading = {
      deviceId: device.id,
      adapter: 'rs232',
      protocol: 'kv-line',
      receivedAt: Date.now(),
      monotonicMs: performance.now(),
      fields: [
        { name: 'SPO2', value: String(90 + (i % 10)) },
        { name: 'HR', value: String(60 + (i % 40)) },
      ],
      markers: [],
      raw: Buffer.alloc(0),
    };
    pending.push(normalizer.normalize(reading).then((d) => cache.append(d)));
  }
  await Promise.all(pending);
  const uplink = new IotCoreUplink({
    gatewayId: thingName,
    config: config({
      uplink: {
        ...uplinkSettings(broker, pki),
        flowControl,
        maxInFlight: 100,
      },
    }).uplink,
  });
  const t0 = performance.now();
  const result = await uplink.openWindow(cache);
  const seconds = (performance.now() - t0) / 1000;
  await cache.close();
  console.log(
    `cache -> broker, flow control ${flowControl}: ${fmt(result.records)} records in ${result.messages} messages, ` +
      `${seconds.toFixed(2)} s (window incl. connect) = ${fmt(result.records / seconds)} records/s, ` +
      `${fmt(result.bytes / 1024 / seconds)} KiB/s; outcome ${result.outcome}`,
  );
}

async function rss(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function idleMemory(pki, broker, nodeFlags) {
  const pty = await openPtyPair(join(dir, 'pty2'));
  const configPath = join(dir, 'config.json');
  const cfg = {
    version: 1,
    gateway: { id: thingName, dataDir: join(dir, 'data-idle') },
    devices: [{ ...device, port: { path: pty.gatewayPath } }],
    uplink: uplinkSettings(broker, pki),
  };
  await writeFile(configPath, JSON.stringify(cfg));
  // nodeFlags undefined: run as installed, through the binary's shebang and its V8 flags.
  const child = nodeFlags
    ? spawn(process.execPath, [...nodeFlags, bin, 'run', '--config', configPath], { stdio: 'ignore' })
    : spawn(bin, ['run', '--config', configPath], { stdio: 'ignore' });
  await sleep(5000);
  const idle = await rss(child.pid);
  // A window with records to send: a TLS connection is made and the SDK loaded (in the window process).
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(pty.devicePath);
  for (let i = 0; i < 100; i++) out.write(`SPO2=${90 + (i % 10)} HR=${60 + (i % 40)}\r\n`);
  await sleep(1000);
  out.destroy();
  await promisify(execFile)(process.execPath, [bin, 'sync', '--config', configPath]);
  await sleep(3000);
  const after = await rss(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await pty.close();
  console.log(
    `attache run ${nodeFlags ? `node ${nodeFlags.join(' ') || '(no flags)'}` : '(as installed, shebang flags)'}, 1 adapter, idle: RSS ${idle.rss.toFixed(1)} MB before any window, ` +
      `${after.rss.toFixed(1)} MB after a window of 100 records (run in a child process); peak ${after.peak.toFixed(1)} MB (target < 64 MB)`,
  );
}

try {
  console.log(`attache bench — node ${process.version}, ${process.arch}`);
  // BENCH_COMMIT_INTERVALS=5,0: the pty figure once per commitIntervalMs, taking turns, and nothing else.
  const intervals = process.env.BENCH_COMMIT_INTERVALS?.split(',').map(Number);
  if (intervals) {
    for (const interval of intervals) await ptyToCache(20_000, interval);
  } else {
    await ptyToCache(20_000);
    const pki = await createTestPki(join(dir, 'pki'), { thingName });
    const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
    try {
      await cacheToBroker(50_000, 'none', pki, broker);
      await cacheToBroker(20_000, 'aws-iot-core', pki, broker);
      await idleMemory(pki, broker, undefined);
      await idleMemory(pki, broker, []);
    } finally {
      await broker.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
// The AWS CRT client can keep the loop alive after close.
process.exit(0);
