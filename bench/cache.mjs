// Cache figures (printed, not asserted): durable encrypted appends in batches (with the CPU time per
// record: user + system of every thread, LevelDB's included, which a busy machine disturbs less than
// the rate) and one at a time, drain throughput, size on disk per million records, RSS with a
// 1,000,000-record backlog, and the size before and after the compaction a drain triggers.
// Targets (issue 6): >= 50,000 records/s in batches; 1 record durable in <= 10 ms at p99;
// RSS <= 150 MB with 1 M waiting.
// Usage: node --expose-gc bench/cache.mjs [records, default 1000000]
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';

const total = Number(process.argv[2] ?? 1_000_000);
const batch = 1000;
const dir = await mkdtemp(join(tmpdir(), 'attache-bench-cache-'));
const keyring = await loadOrCreateKeyring(join(dir, 'keys', 'cache.key'));
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const mb = (bytes) => `${fmt(bytes / 1e6, 1)} MB`;
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

function draft(n) {
  return {
    gatewayId: 'gw-bench',
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
    patient: { token: 'pt_abcdefghijklmnopqrstuvwxyz'.replace('xyz', '234') },
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + (n % 10), unit: '%', status: 'valid' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', system: 'MDC', value: 60 + (n % 40), unit: '/min', status: 'valid' },
    ],
  };
}

async function du(path) {
  let bytes = 0;
  for (const name of await readdir(path)) bytes += (await stat(join(path, name))).size;
  return bytes;
}

function rss() {
  globalThis.gc?.();
  return process.memoryUsage().rss;
}

/** p50/p99 latency of `count` single appends, each awaited before the next. */
async function singleLatency(commitIntervalMs, count) {
  const cache = new LevelCache({ path: join(dir, `single-${commitIntervalMs}`), keyring, commitIntervalMs });
  await cache.open();
  const times = [];
  for (let n = 0; n < count; n++) {
    const start = process.hrtime.bigint();
    await cache.append(draft(n));
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  await cache.close();
  times.sort((a, b) => a - b);
  console.log(
    `1 record durable (commitIntervalMs ${commitIntervalMs}): p50 ${fmt(pct(times, 50), 2)} ms, p99 ${fmt(pct(times, 99), 2)} ms (${count} appends)`,
  );
}

console.log(`cache bench: ${fmt(total)} records, node ${process.version}`);
await singleLatency(0, 2000);
await singleLatency(5, 1000);

const path = join(dir, 'bulk');
let cache = new LevelCache({ path, keyring, maxBatchRecords: batch });
await cache.open();
const batchTimes = [];
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
for (let n = 0; n < total; n += batch) {
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(batch, total - n) }, (_, k) => cache.append(draft(n + k))));
  batchTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
const appendSeconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
batchTimes.sort((a, b) => a - b);
console.log(
  `batched durable encrypted appends: ${fmt(total / appendSeconds)} records/s; batch of ${batch} durable p50 ${fmt(pct(batchTimes, 50), 1)} ms, p99 ${fmt(pct(batchTimes, 99), 1)} ms; CPU ${fmt((cpu.user + cpu.system) / total, 1)} µs per record (all threads, drafts included)`,
);
await cache.close();
const full = await du(path);
console.log(`size on disk: ${mb(full)} for ${fmt(total)} records = ${mb((full / total) * 1e6)} per million`);

cache = new LevelCache({ path, keyring });
const before = rss();
await cache.open();
const stats = await cache.stats();
console.log(
  `RSS with a ${fmt(stats.records)}-record backlog open: ${mb(rss())} (${mb(before)} before opening)`,
);

let read = 0;
const readStart = process.hrtime.bigint();
for (let afterSeq = 0; ; ) {
  const page = await cache.read({ afterSeq, limit: 500, maxBytes: 120_000 });
  if (page.length === 0) break;
  read += page.length;
  afterSeq = page.at(-1).seq;
}
const readSeconds = Number(process.hrtime.bigint() - readStart) / 1e9;
console.log(`read (decrypt) throughput: ${fmt(read / readSeconds)} records/s`);

let drained = 0;
const drainStart = process.hrtime.bigint();
for (;;) {
  const page = await cache.read({ afterSeq: 0, limit: 500, maxBytes: 120_000 });
  if (page.length === 0) break;
  await cache.remove(page[0].seq, page.at(-1).seq);
  drained += page.length;
}
const drainSeconds = Number(process.hrtime.bigint() - drainStart) / 1e9;
console.log(
  `drain (read + synced remove, pages of 500): ${fmt(drained / drainSeconds)} records/s; RSS ${mb(rss())}`,
);
await cache.close(); // waits for the compaction the drain started
const health = await (async () => {
  await cache.open();
  const h = await cache.health();
  await cache.close();
  return h;
})();
console.log(
  `size on disk: ${mb(full)} full, ${mb(await du(path))} after drain + compaction (at ${health.lastCompactionAt})`,
);
await rm(dir, { recursive: true, force: true });
