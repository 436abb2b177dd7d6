// Uplink drain benchmark: a backlog of BENCH_RECORDS records (default 1,000,000) drained in one window
// against Debian's mosquitto with mutual TLS, in four modes, each in its own process (for a clean
// peak RSS): AWS IoT Core flow control on (plain JSON, gzip) and off (plain, gzip: the CPU bound).
// The backlog is synthetic and generated on read (constant memory), as the window process sees the
// cache over IPC: the figures are the uplink's own. Usage: node bench/uplink.mjs [BENCH_RECORDS=n]
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPki, startMosquitto, uplinkSettings } from '@attache/devkit';
import { IotCoreUplink } from '@attache/uplink';

const quotaBytes = 512 * 1024;
const quotaMessages = 100;
const gatewayId = 'gw-bench-1';
// The config default (20) unless BENCH_IN_FLIGHT says otherwise (AWS IoT Core allows 100).
const inFlight = Number(process.env.BENCH_IN_FLIGHT ?? 20);

function recordJson(seq) {
  return JSON.stringify({
    gatewayId,
    deviceId: `spo2-bed${seq % 12}`,
    adapter: 'rs232',
    protocol: 'kv-line',
    seq,
    capturedAt: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
    clock: { synchronized: true, bootId: '0f4c3a52-8d1e-4b7a-9c2f-6e5d4c3b2a19', monotonicMs: seq * 1000 },
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + (seq % 10), unit: '%', status: 'valid' },
      {
        code: 'MDC_PULS_OXIM_PULS_RATE',
        system: 'MDC',
        value: 60 + (seq % 40),
        unit: '/min',
        status: 'valid',
      },
    ],
  });
}

/** Records 1..total, generated on read; removes only counted. */
class SyntheticOutbox {
  constructor(total) {
    this.total = total;
    this.removed = 0;
    this.jsonBytes = 0;
  }
  async read({ afterSeq, limit, maxBytes }) {
    const out = [];
    let bytes = 0;
    for (let seq = afterSeq + 1; seq <= this.total && out.length < limit; seq++) {
      const json = recordJson(seq);
      bytes += json.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push({ seq, json });
    }
    return out;
  }
  async remove(first, last) {
    this.removed += last - first + 1;
  }
}

async function runMode(mode, records, broker) {
  const [flowControl, compression] = mode.split('+');
  const outbox = new SyntheticOutbox(records);
  const config = {
    ...broker,
    topic: 'dt/attache/{gatewayId}/telemetry',
    eventsTopic: 'dt/attache/{gatewayId}/events',
    stateTopic: 'dt/attache/{gatewayId}/state',
    basicIngestRule: '',
    compression,
    shadowName: '',
    fipsOnly: false,
    maxMessageBytes: 120_000,
    maxInFlight: inFlight,
    flowControl,
    connectTimeoutMs: 45_000,
    trustedTime: { enabled: false, maxOffsetMs: 5000, timeoutMs: 10_000 },
    routes: [],
    window: {
      everySeconds: 0,
      maxDurationSeconds: 3600,
      schedules: [],
      onNetworkUp: false,
      networkPollSeconds: 30,
      alwaysConnected: false,
      maxBytes: 0,
    },
  };
  const uplink = new IotCoreUplink({ gatewayId, config });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const result = await uplink.openWindow(outbox);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return {
    mode,
    outcome: result.outcome,
    records: result.records,
    messages: result.messages,
    bytes: result.bytes,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    // The machine's 1-minute load average at the end: the CPU-bound figures depend on it.
    load: loadavg()[0],
  };
}

function report(r) {
  const rps = r.records / r.seconds;
  const bps = r.bytes / r.seconds;
  const mps = r.messages / r.seconds;
  const fb = bps / quotaBytes;
  const fm = mps / quotaMessages;
  const binds = fb >= fm ? '512 KB/s' : '100 msg/s';
  return [
    `${r.mode.padEnd(18)} ${r.outcome}: ${r.records.toLocaleString('en')} records, ${r.messages} msgs, ${(r.bytes / 1048576).toFixed(1)} MiB in ${r.seconds.toFixed(1)} s`,
    `   ${Math.round(rps).toLocaleString('en')} records/s; ${(bps / 1024).toFixed(0)} KiB/s = ${(fb * 100).toFixed(1)} % of 512 KB/s; ${mps.toFixed(1)} msg/s = ${(fm * 100).toFixed(1)} % of 100 msg/s (binds: ${binds})`,
    `   CPU ${(r.cpuSeconds / (r.records / 1e6)).toFixed(1)} s per million records; peak RSS ${r.peakRssMb.toFixed(1)} MB; load average ${r.load.toFixed(2)} (${cpus().length} CPUs)`,
  ].join('\n');
}

if (process.env.BENCH_UPLINK_MODE) {
  const result = await runMode(
    process.env.BENCH_UPLINK_MODE,
    Number(process.env.BENCH_RECORDS),
    JSON.parse(process.env.BENCH_BROKER),
  );
  process.send(result, () => process.exit(0));
} else {
  const records = Number(process.env.BENCH_RECORDS ?? 1_000_000);
  const dir = await mkdtemp(join(tmpdir(), 'attache-bench-uplink-'));
  const pki = await createTestPki(join(dir, 'pki'), { thingName: gatewayId });
  const broker = await startMosquitto({ dir, pki });
  const modes = (process.env.BENCH_MODES ?? 'aws-iot-core+none,aws-iot-core+gzip,none+none,none+gzip').split(
    ',',
  );
  console.log(
    `uplink drain, ${records.toLocaleString('en')} records of ~${recordJson(500_000).length} B JSON, maxMessageBytes 120000, maxInFlight ${inFlight}`,
  );
  try {
    for (const mode of modes) {
      const child = fork(fileURLToPath(import.meta.url), {
        // The V8 flags of attache.service, which its window processes inherit (bin.ts explains them).
        execArgv: ['--v8-pool-size=1', '--max-semi-space-size=4'],
        env: {
          ...process.env,
          BENCH_UPLINK_MODE: mode,
          BENCH_RECORDS: String(records),
          BENCH_BROKER: JSON.stringify(uplinkSettings(broker, pki)),
        },
      });
      const result = await new Promise((resolve, reject) => {
        child.once('message', resolve);
        child.once('exit', (code) => reject(new Error(`mode ${mode} exited ${code}`)));
      });
      console.log(report(result));
    }
  } finally {
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
