// HL7 v2 over MLLP into the real pipeline: EthernetAdapter (listen) → ReadingNormalizer → LevelCache
// (encrypted, synced group commits) in this process, and senders in a child process (the monitors:
// other machines in a ward) that wait for each ACK before the next message. Prints messages/s over 1
// and over 20 connections, ACK latency p50/p99, and CPU per message of the gateway side and of the
// senders. Nothing is asserted. `node bench/hl7.mjs [commitIntervalMs ...]` (default: 0, the config's
// default, and 5); HL7_BENCH_CONNECTIONS=1 or =20 runs only that case; HL7_BENCH_PORT=n sends the same
// messages to a peer's MLLP server listening on 127.0.0.1:n instead (bench/peers); HL7_BENCH_PIPELINE=n
// lets each connection write up to n messages ahead of their ACKs (a sender working off a backlog). Each case first
// sends HL7_BENCH_WARMUP messages (default 2,000, spread over its connections) that are not counted,
// so that the figures are of the running gateway rather than of V8 compiling its code; the group
// sizes are the cache's synced writes during the counted messages (from its debug log). The
// one-connection case measures the disk's fsync ceiling in the same directory just before it and
// again just after (bench/peers/fsync-probe.mjs) and prints its rate as a ratio of each, and where
// its time goes: p50 of the sink call to the synced write done, to the sink resolved, and to the
// next message's sink call. The gateway side starts with the Node flags and malloc setting of the
// service's systemd unit (bench/unit-start.mjs; HL7_BENCH_SERVICE_FLAGS= , empty, runs it with this
// process's own flags instead); the senders with none.
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EthernetAdapter } from '@attache/adapter-ethernet';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { nullLogger, validateConfig } from '@attache/core';
import {
  getFreePort,
  MllpSenderSimulator,
  oruR01Message,
  parseMllpAck,
  pcd01VitalSigns,
} from '@attache/devkit';
import { encodeMllp, Hl7Driver } from '@attache/hl7';
// Not among the gateway package's exports: the sink `attache run` gives its adapters.
import { readingSink } from '../packages/gateway/dist/reading-sink.js';
import { fsyncCeiling } from './peers/fsync-probe.mjs';
import { boxEnv, unitStart } from './unit-start.mjs';

// HL7_BENCH_DIR=/dev/shm shows the pipeline without the disk (fsync on tmpfs is free): not durable.
/** The parent's temporary directory (the senders' child makes none). */
let dir;
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const observations = pcd01VitalSigns({ systolic: 120, diastolic: 80, mean: 93, spo2: 97, pulse: 72 });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Messages sent before the counted ones, over all connections of a case. */
const warmup = Number(process.env.HL7_BENCH_WARMUP ?? 2000);

/**
 * A logger that keeps the size of each group the cache commits and when (its 'appends committed'
 * debug line, logged once the group's synced write is done).
 */
function groupSizes() {
  const sizes = [];
  const times = [];
  const logger = {
    ...nullLogger,
    debug: (fields, msg) => {
      if (msg !== 'appends committed') return;
      sizes.push(fields.records);
      times.push(performance.now());
    },
    child: () => logger,
  };
  return { logger, sizes, times };
}

/**
 * One connection's message in three stages, p50 in ms: from the sink call (the message parsed) to
 * its synced write done (normalize, seal, write + fdatasync), from there to the sink's promise
 * resolved, and from there to the next message's sink call (the AA written, the sender's turn,
 * the next message read and parsed). Undefined unless each counted message had its own write.
 */
function stageSummary(calls, commits, stored) {
  if (calls.length !== commits.length || calls.length !== stored.length) return undefined;
  const p50 = (values) =>
    percentile(
      values.toSorted((a, b) => a - b),
      50,
    ).toFixed(3);
  const spans = (from, to, shift = 0) => from.slice(0, from.length - shift).map((t, i) => to[i + shift] - t);
  return (
    `stages p50: sink call to synced write done ${p50(spans(calls, commits))} ms, ` +
    `to stored ${p50(spans(commits, stored))} ms, to the next sink call ${p50(spans(stored, calls, 1))} ms`
  );
}

/** "n groups, p50/p90/max records" of `sizes` (not sorted). */
function groupSummary(sizes) {
  const sorted = [...sizes].sort((a, b) => a - b);
  return `${fmt(sorted.length)} synced writes, records per write p50 ${percentile(sorted, 50)}, p90 ${percentile(sorted, 90)}, max ${sorted.at(-1)}`;
}

/** Sends the warm-up messages (when any), then the counted ones; resolves with the senders' report. */
async function exchange(senders, connections, perConnection, beforeCounted = () => {}) {
  const warm = Math.ceil(warmup / connections);
  if (warm > 0) {
    senders.send({ count: warm, prefix: 'W' });
    await once(senders, 'message');
  }
  const marks = beforeCounted();
  senders.send({ count: perConnection, prefix: 'C' });
  const [report] = await once(senders, 'message');
  return { report, marks };
}

/** The same senders against a peer's MLLP server already listening on `port` (HL7_BENCH_PORT). */
async function runAgainst(port, connections, perConnection) {
  const senders = fork(new URL(import.meta.url), ['--senders'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  senders.send({ port, connections });
  await once(senders, 'message');
  const {
    report: { latencies },
    marks: t0,
  } = await exchange(senders, connections, perConnection, () => performance.now());
  const seconds = (performance.now() - t0) / 1000;
  await once(senders, 'exit');
  latencies.sort((a, b) => a - b);
  const total = connections * perConnection;
  console.log(
    `${connections} connection(s), peer on port ${port}: ${fmt(total)} ORU^R01 in ${seconds.toFixed(2)} s = ` +
      `${fmt(total / seconds)} msg/s; ACK p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`,
  );
}

async function run(connections, perConnection, commitIntervalMs, ceiling) {
  const port = await getFreePort();
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-bench', dataDir: join(dir, 'data') },
    devices: [
      {
        id: 'monitors',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
    ],
  });
  const groups = groupSizes();
  const cache = new LevelCache({
    path: join(dir, `cache-${connections}-${commitIntervalMs}`),
    keyring: await loadOrCreateKeyring(join(dir, 'keys', 'cache.key')),
    commitIntervalMs,
    logger: groups.logger,
  });
  await cache.open();
  // The gateway's own sink: normalization in call order, then the cache's group commit with the
  // message's idempotency key (a re-sent message is stored once).
  const gatewaySink = readingSink(config, cache, nullLogger);
  const stages = { calls: [], stored: [] };
  const sink = (reading) => {
    stages.calls.push(performance.now());
    return gatewaySink(reading).then(() => {
      stages.stored.push(performance.now());
    });
  };
  const device = config.devices[0];
  const driver = new Hl7Driver({ format: device.format, adapter: 'ethernet' });
  const adapter = new EthernetAdapter({ device, driver, sink });
  await adapter.start();
  const senders = fork(new URL(import.meta.url), ['--senders'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  senders.send({ port, connections });
  await once(senders, 'message'); // connected
  const {
    report: { latencies, cpu: senderCpu },
    marks: { cpu0, t0 },
  } = await exchange(senders, connections, perConnection, () => {
    groups.sizes.length = 0;
    groups.times.length = 0;
    stages.calls.length = 0;
    stages.stored.length = 0;
    return { cpu0: process.cpuUsage(), t0: performance.now() };
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sizes = [...groups.sizes];
  const stageLine = connections === 1 ? stageSummary(stages.calls, groups.times, stages.stored) : undefined;
  const total = connections * perConnection;
  await once(senders, 'exit');
  // The disk's rate drifts on a shared machine: measured again right after, a round whose two
  // ceilings differ much was disturbed.
  const after = ceiling ? await fsyncCeiling(dir, 2000) : undefined;
  await adapter.stop();
  const stats = await cache.stats();
  await cache.close();
  latencies.sort((a, b) => a - b);
  console.log(
    `${connections} connection(s), commitIntervalMs ${commitIntervalMs}: ${fmt(total)} ORU^R01 in ${seconds.toFixed(2)} s = ` +
      `${fmt(total / seconds)} msg/s; ACK p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms; ` +
      `CPU ${fmt((cpu.user + cpu.system) / total, 1)} µs/msg gateway side (adapter, normalizer, cache; ` +
      `user ${fmt(cpu.user / total, 1)}, system ${fmt(cpu.system / total, 1)}), ` +
      `${fmt(senderCpu / total, 1)} µs/msg senders; ${fmt(stats.records)} records stored; ${groupSummary(sizes)}` +
      (ceiling
        ? `; fsync ceiling just before ${fmt(ceiling.perSecond)} writes/s (write + fdatasync p50 ${ceiling.p50.toFixed(3)} ms), ` +
          `ratio ${(total / seconds / ceiling.perSecond).toFixed(2)}` +
          (after
            ? `; just after ${fmt(after.perSecond)} writes/s (p50 ${after.p50.toFixed(3)} ms), ratio ${(total / seconds / after.perSecond).toFixed(2)}`
            : '')
        : '') +
      (stageLine ? `; ${stageLine}` : ''),
  );
}

/**
 * The child: `connections` senders; on each `{ count, prefix }` from the parent each sends `count`
 * messages, awaiting each AA, and the child answers with the latencies and its CPU time. Counted
 * messages follow the warm-up, so they come last and the child exits after them.
 */
async function senders({ port, connections }) {
  const list = Array.from({ length: connections }, () => new MllpSenderSimulator({ port, resend: false }));
  await Promise.all(list.map((s) => s.connect()));
  process.send('connected');
  for (;;) {
    const [{ count, prefix }] = await once(process, 'message');
    const report = await round(list, count, prefix);
    if (prefix === 'W') {
      process.send(report);
      continue;
    }
    for (const s of list) await s.close();
    process.send(report, () => process.disconnect());
    return;
  }
}

/** Each of `list` sends `count` messages, awaiting each AA; their latencies and the CPU time used. */
async function round(list, count, prefix) {
  const latencies = [];
  const cpu0 = process.cpuUsage();
  await Promise.all(
    list.map((sender, c) => (pipeline > 1 ? pipelined : oneByOne)(sender, c, count, prefix, latencies)),
  );
  const cpu = process.cpuUsage(cpu0);
  return { latencies, cpu: cpu.user + cpu.system };
}

/** Messages in flight per connection (HL7_BENCH_PIPELINE): 1 waits for each ACK, like a monitor. */
const pipeline = Number(process.env.HL7_BENCH_PIPELINE ?? 1);

function benchMessage(prefix, c, i) {
  return oruR01Message({
    controlId: `${prefix}${c}-${i}`,
    patient: { mrn: `MRN-${c}`, name: 'BENCH^PATIENT' },
    observations,
  });
}

async function oneByOne(sender, c, count, prefix, latencies) {
  for (let i = 0; i < count; i++) {
    const message = benchMessage(prefix, c, i);
    const start = performance.now();
    const ack = await sender.send(message);
    latencies.push(performance.now() - start);
    if (ack.code !== 'AA') throw new Error(`${ack.controlId}: ${ack.code}`);
  }
}

/** Up to `pipeline` messages written ahead of their ACKs (a sender with a backlog); ACKs in order. */
async function pipelined(sender, c, count, prefix, latencies) {
  const starts = [];
  let sent = 0;
  for (let acked = 0; acked < count; acked++) {
    while (sent < count && sent - acked < pipeline) {
      starts.push(performance.now());
      await sender.sendRaw(encodeMllp(benchMessage(prefix, c, sent)));
      sent++;
    }
    const ack = parseMllpAck(await sender.nextAck());
    latencies.push(performance.now() - starts[acked]);
    if (ack.code !== 'AA') throw new Error(`${ack.controlId}: ${ack.code}`);
  }
}

if (process.argv[2] === '--senders') {
  const [task] = await once(process, 'message');
  await senders(task);
} else if (process.env.HL7_BENCH_SERVICE_FLAGS === undefined) {
  // The gateway side runs as the service does: the Node flags and malloc setting of its systemd
  // unit (HL7_BENCH_SERVICE_FLAGS= , empty, runs it with this process's flags instead).
  const { flags, env } = await unitStart();
  const child = spawn(
    process.execPath,
    [...flags, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      stdio: 'inherit',
      env: boxEnv({ ...env, HL7_BENCH_SERVICE_FLAGS: flags.join(' ') }),
    },
  );
  const [code] = await once(child, 'exit');
  process.exitCode = code ?? 1;
} else {
  console.error(`gateway side: node ${process.env.HL7_BENCH_SERVICE_FLAGS || '(no flags)'}`);
  dir = await mkdtemp(join(process.env.HL7_BENCH_DIR ?? tmpdir(), 'attache-bench-hl7-'));
  try {
    const intervals = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [0, 5];
    // HL7_BENCH_CONNECTIONS=1 or =20 runs only that case (HL7_BENCH_ONLY20=1 as =20).
    const only = process.env.HL7_BENCH_CONNECTIONS ?? (process.env.HL7_BENCH_ONLY20 ? '20' : undefined);
    const peerPort = process.env.HL7_BENCH_PORT;
    for (const interval of peerPort ? [] : intervals) {
      // One connection's bound: the disk's rate for one durable write at a time, where the cache lives.
      if (only !== '20') await run(1, 3000, interval, await fsyncCeiling(dir, 2000));
      if (only !== '1') await run(20, 500, interval);
    }
    if (peerPort) {
      if (only !== '20') await runAgainst(Number(peerPort), 1, 3000);
      if (only !== '1') await runAgainst(Number(peerPort), 20, 500);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
