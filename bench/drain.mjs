// Drain of a backlog through the gateway's own window machinery: a LevelCache (encrypted, on disk)
// holding BENCH_RECORDS records (default 100,000), drained in one window by WindowRunner, which
// serves the outbox over IPC to the window process (window-worker, the AWS CRT) that publishes to
// Debian's mosquitto with mutual TLS, flow control off. The gateway side runs in its own process,
// started with the service's Node flags and malloc setting (its systemd unit), so its peak RSS is its own; both
// processes are sampled from /proc. Then the peer: `mosquitto_pub -l` sending the same batch
// payloads (QoS 1, same broker, same TLS), before and after the drain (its rate is their mean).
// `node bench/drain.mjs [records ...]` prints one line per backlog size; BENCH_ROUNDS=n (default 1)
// repeats each size n times, taking turns with the peer, and prints the medians (BENCH_PROF_DIR=dir:
// CPU profiles of both processes; BENCH_NODE_FLAGS='--trace-gc …': more Node flags for both;
// BENCH_SMAPS=1: what each process's RSS held at its peak, by mapping, from /proc/<pid>/smaps). Nothing
// is asserted.
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { validateConfig } from '@attache/core';
import { createTestPki, profileFormat, startMosquitto, uplinkSettings } from '@attache/devkit';
import { BatchReader } from '@attache/uplink';
import { draft, gatewayId } from './drain-records.mjs';
import { boxEnv, unitStart } from './unit-start.mjs';

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
/** The Node flags and malloc settings the service starts with (its systemd unit). */
const service = await unitStart();
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

function config(dir, broker, pki) {
  return validateConfig({
    version: 1,
    gateway: { id: gatewayId, dataDir: join(dir, 'data') },
    devices: [
      { id: 'spo2-bench', adapter: 'rs232', port: { path: '/dev/null' }, format: profileFormat('nonin') },
    ],
    uplink: { ...uplinkSettings(broker, pki), flowControl: 'none' },
    log: { level: 'warn' },
  });
}

async function cacheAt(dir) {
  const cache = new LevelCache({
    path: join(dir, 'cache'),
    keyring: await loadOrCreateKeyring(join(dir, 'keys', 'cache.key')),
  });
  await cache.open();
  return cache;
}

async function fill(dir, records) {
  const cache = await cacheAt(dir);
  for (let n = 0; n < records; n += 1000) {
    const group = [];
    for (let i = n; i < Math.min(records, n + 1000); i++) group.push(cache.append(draft(i)));
    await Promise.all(group);
  }
  await cache.close();
}

/** VmRSS, VmHWM (MB), CPU (µs) and bytes written to disk (MB) of `pid`, or undefined once it is gone. */
async function sample(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))?.[1] ?? 0);
    const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
    const cpu = ((Number(stat[11]) + Number(stat[12])) / ticks) * 1e6;
    const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
    const written = Number(io.match(/^write_bytes:\s+(\d+)/m)?.[1] ?? 0) / 2 ** 20;
    return {
      written,
      rss: kb('VmRSS') / 1024,
      hwm: kb('VmHWM') / 1024,
      anon: kb('RssAnon') / 1024,
      file: kb('RssFile') / 1024,
      cpu,
    };
  } catch {
    return undefined;
  }
}

/** The gateway side: the cache and WindowRunner in this process, one window when told. */
async function gatewaySide({ dir, broker, pki }) {
  const { WindowRunner } = await import('@attache/gateway');
  const { nullLogger } = await import('@attache/core');
  const cache = await cacheAt(dir);
  const runner = new WindowRunner({ config: config(dir, broker, pki), cache, logger: nullLogger });
  const heap = { used: 0, total: 0, external: 0 };
  const sampling = setInterval(() => {
    const usage = process.memoryUsage();
    heap.used = Math.max(heap.used, usage.heapUsed / 2 ** 20);
    heap.total = Math.max(heap.total, usage.heapTotal / 2 ** 20);
    heap.external = Math.max(heap.external, usage.external / 2 ** 20);
  }, 20);
  process.send({ type: 'ready' });
  await once(process, 'message');
  const t0 = performance.now();
  const result = await runner.run({ trigger: 'bench' });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampling);
  process.send({ type: 'result', result, seconds, heap });
  await once(process, 'message'); // sampled: close and exit
  await cache.close();
  process.disconnect();
}

/** RSS by mapping (MB, the largest first) from /proc/<pid>/smaps: file name, or [heap], or anonymous. */
async function smaps(pid) {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => '');
  const by = new Map();
  let name = '';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1].replace(/.*\/(\d+\.(ldb|log))$/, 'LevelDB $2 files') || 'anonymous';
    else if (line.startsWith('Rss:')) by.set(name, (by.get(name) ?? 0) + Number(line.split(/\s+/)[1]) / 1024);
  }
  return [...by]
    .filter(([, mb]) => mb >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([n, mb]) => `${n} ${mb.toFixed(1)}`);
}

/**
 * Samples `pid` and its children from /proc every 20 ms (from this process, so the sampling costs
 * the measured processes nothing): peaks of RSS split into anonymous and file-backed memory.
 */
function watch(pid) {
  const own = { anon: 0, file: 0, rss: 0, smaps: [] };
  const windowProcess = { hwm: 0, anon: 0, file: 0, cpu: 0, rss: 0, smaps: [] };
  const breakdown = process.env.BENCH_SMAPS === '1';
  const timer = setInterval(async () => {
    const me = await sample(pid);
    if (!me) return;
    own.anon = Math.max(own.anon, me.anon);
    own.file = Math.max(own.file, me.file);
    if (breakdown && me.rss > own.rss) [own.rss, own.smaps] = [me.rss, await smaps(pid)];
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    for (const child of children.trim().split(/\s+/)) {
      const s = child && (await sample(child));
      if (!s) continue;
      windowProcess.hwm = Math.max(windowProcess.hwm, s.hwm);
      windowProcess.anon = Math.max(windowProcess.anon, s.anon);
      windowProcess.file = Math.max(windowProcess.file, s.file);
      windowProcess.cpu = Math.max(windowProcess.cpu, s.cpu);
      if (breakdown && s.rss > windowProcess.rss)
        [windowProcess.rss, windowProcess.smaps] = [s.rss, await smaps(child)];
    }
  }, 20);
  return { own, windowProcess, stop: () => clearInterval(timer) };
}

/** The same batches, published by mosquitto_pub reading one payload per line. */
async function batchFile(dir, broker, pki) {
  const cache = await cacheAt(dir);
  const { maxMessageBytes } = config(dir, broker, pki).uplink;
  const reader = new BatchReader({ outbox: cache, gatewayId, maxMessageBytes });
  const file = join(dir, 'batches.txt');
  const out = createWriteStream(file);
  let messages = 0;
  let records = 0;
  for (let batch = await reader.next(); batch; batch = await reader.next()) {
    out.write(batch.payload);
    out.write('\n');
    messages++;
    records += batch.count;
  }
  out.end();
  await once(out, 'finish');
  await cache.close();
  return { file, messages, records };
}

/** The same batches, published by mosquitto_pub reading one payload per line: seconds taken. */
async function peer(batches, broker, pki, topic) {
  const t0 = performance.now();
  const child = spawn(
    'sh',
    [
      '-c',
      `exec mosquitto_pub -h ${broker.host} -p ${broker.port} -V mqttv5 -q 1 -t '${topic}' --cafile '${pki.caFile}' --cert '${pki.subscriberCertFile}' --key '${pki.subscriberKeyFile}' -l < '${batches.file}'`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const [code] = await once(child, 'exit');
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`mosquitto_pub exited ${code}`);
  return seconds;
}

/** Fills a cache with `records`, runs the peer, drains the cache through the gateway, runs the peer again. */
async function round(records, pki, broker) {
  const dir = await mkdtemp(join(tmpdir(), 'attache-bench-drain-'));
  try {
    const f0 = performance.now();
    await fill(dir, records);
    const fillSeconds = (performance.now() - f0) / 1000;
    const topic = `dt/attache/${gatewayId}/telemetry`;
    const batches = await batchFile(dir, broker, pki);
    const peerBefore = await peer(batches, broker, pki, topic);
    // BENCH_PROF_DIR: CPU profiles of the gateway side and of the window process (it inherits execArgv).
    const profile = process.env.BENCH_PROF_DIR;
    const child = fork(new URL(import.meta.url), ['--gateway'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [
        ...service.flags,
        ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []),
        ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      ],
      env: boxEnv(service.env),
    });
    child.send({ dir, broker: { host: broker.host, port: broker.port }, pki });
    const exited = once(child, 'exit');
    const next = async () => {
      const reply = await Promise.race([once(child, 'message'), exited]);
      if (typeof reply[0] !== 'object' || reply[0] === null)
        throw new Error(`the gateway side exited (${reply})`);
      return reply[0];
    };
    await next(); // ready
    const before = await sample(child.pid);
    const watching = watch(child.pid);
    child.send('go');
    const { result, seconds, heap } = await next();
    watching.stop();
    const after = await sample(child.pid);
    child.send('exit');
    await exited;
    const peerAfter = await peer(batches, broker, pki, topic);
    if (process.env.BENCH_SMAPS === '1') {
      console.log(`gateway at its peak (MB): ${watching.own.smaps.join(', ')}`);
      console.log(`window process at its peak (MB): ${watching.windowProcess.smaps.join(', ')}`);
    }
    const peerRate = batches.records / ((peerBefore + peerAfter) / 2);
    const rate = result.records / seconds;
    return {
      records,
      fillSeconds,
      drained: result.records,
      messages: result.messages,
      outcome: result.outcome,
      seconds,
      rate,
      gateway: {
        before: before.rss,
        peak: after.hwm,
        anon: watching.own.anon,
        file: watching.own.file,
        heap,
        cpu: (after.cpu - before.cpu) / result.records,
        written: after.written - before.written,
      },
      window: { ...watching.windowProcess, cpu: watching.windowProcess.cpu / result.records },
      peer: { messages: batches.messages, rate: peerRate },
      ratio: rate / peerRate,
      load: loadavg()[0],
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function report(rounds) {
  const m = (pick) => median(rounds.map(pick));
  const r = rounds[0];
  const n = rounds.length;
  const of = n > 1 ? `median of ${n} rounds, ` : '';
  const mb = (v) => `${v.toFixed(0)} MB`;
  console.log(
    `drain of ${fmt(r.records)} (${of}load ${rounds.map((x) => x.load.toFixed(2)).join(', ')}): ${fmt(r.drained)} records in ${r.messages} messages, ${m((x) => x.seconds).toFixed(2)} s = ${fmt(m((x) => x.rate))} records/s (outcome ${r.outcome}; filled in ${m((x) => x.fillSeconds).toFixed(1)} s) | ` +
      `gateway: RSS ${mb(m((x) => x.gateway.before))} before, peak ${mb(m((x) => x.gateway.peak))} (anonymous ${mb(m((x) => x.gateway.anon))}, file-backed ${mb(m((x) => x.gateway.file))}; JS heap used ${mb(m((x) => x.gateway.heap.used))} of ${mb(m((x) => x.gateway.heap.total))}, external ${mb(m((x) => x.gateway.heap.external))}), disk written ${mb(m((x) => x.gateway.written))}, CPU ${fmt(
        m((x) => x.gateway.cpu),
        1,
      )} µs/record | ` +
      `window process: peak ${mb(m((x) => x.window.hwm))} (anonymous ${mb(m((x) => x.window.anon))}, file-backed ${mb(m((x) => x.window.file))}), CPU ${fmt(
        m((x) => x.window.cpu),
        1,
      )} µs/record | ` +
      `together ${fmt(
        m((x) => x.gateway.cpu + x.window.cpu),
        1,
      )} µs/record | ` +
      `mosquitto_pub, same ${r.peer.messages} batches: ${fmt(m((x) => x.peer.rate))} records/s | ratio ${m((x) => x.ratio).toFixed(3)} (rounds: ${rounds.map((x) => x.ratio.toFixed(3)).join(', ')})`,
  );
}

if (process.argv[2] === '--gateway') {
  const [task] = await once(process, 'message');
  await gatewaySide(task);
} else {
  const sizes =
    process.argv.length > 2
      ? process.argv.slice(2).map(Number)
      : [Number(process.env.BENCH_RECORDS ?? 100_000)];
  const dir = await mkdtemp(join(tmpdir(), 'attache-bench-drain-pki-'));
  const pki = await createTestPki(join(dir, 'pki'), { thingName: gatewayId });
  const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
  try {
    const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
    for (const records of sizes) {
      const results = [];
      for (let i = 0; i < rounds; i++) results.push(await round(records, pki, broker));
      report(results);
    }
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
