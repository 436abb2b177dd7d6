// A simulated fleet day: many gateways (the real LevelCache and IotCoreUplink, many per process)
// upload through Debian's mosquitto (mutual TLS, the fleet's ACL: CN = thing name) into
// @attache/consumer, their windows spread over a simulated day, with faults: the broker restarted
// mid-window, windows cut by their deadline, gateways killed mid-window (cache closed and reopened),
// clocks unsynchronized and then corrected, caches full and dropping the oldest. Then it checks that
// the consumer's output is exactly what the devices produced minus what the gateways said they
// dropped, without a duplicate, every gap reported and explained, per-gateway order kept.
// `node bench/fleet-day.mjs` (BENCH_GATEWAYS, default 200; BENCH_RECORDS per gateway, default 300);
// test/fleet-day.test.ts runs a small day in CI.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { MemoryStateStore, MessageConsumer } from '@attache/consumer';
import { validateConfig } from '@attache/core';
import {
  createTestPki,
  issueClientCertificate,
  profileFormat,
  startMosquitto,
  subscribeTopic,
  uplinkSettings,
} from '@attache/devkit';
import { IotCoreUplink } from '@attache/uplink';

const HOUR = 3_600_000;
const DAY_START = Date.UTC(2026, 11, 4);
const faults = ['none', 'clock', 'full', 'deadline', 'killed', 'none'];
const bootOf = (i, n) => `${String(i).padStart(8, '0')}-0000-4000-8000-${String(n).padStart(12, '0')}`;

class SimulatedGateway {
  constructor(world, i, certificate) {
    this.world = world;
    this.i = i;
    this.thing = `fleet-gw-${String(i).padStart(4, '0')}`;
    this.fault = faults[i % faults.length];
    this.dir = join(world.dir, this.thing);
    this.produced = new Map(); // seq -> value sent by the device
    this.events = [];
    this.nextEventId = 1;
    this.dropped = 0;
    this.boot = 0;
    this.bootAt = DAY_START - HOUR;
    this.mono = 0;
    this.synchronized = this.fault !== 'clock';
    this.windows = [];
    const config = validateConfig({
      version: 1,
      gateway: { id: this.thing },
      devices: [
        { id: 'spo2-bed1', adapter: 'rs232', port: { path: '/dev/null' }, format: profileFormat('nonin') },
      ],
      uplink: {
        ...uplinkSettings(world.broker, world.pki),
        certFile: certificate.certFile,
        keyFile: certificate.keyFile,
        maxMessageBytes: 2048,
        compression: i % 2 ? 'gzip' : 'none',
        flowControl: 'none',
        connectTimeoutMs: 3000,
        trustedTime: { enabled: false },
      },
    });
    this.uplink = new IotCoreUplink({ gatewayId: this.thing, config: config.uplink });
    this.host = {
      pendingEvents: async () => [...this.events],
      removeEvents: async (ids) => {
        this.events = this.events.filter((e) => !ids.includes(e.eventId));
      },
    };
  }

  async open() {
    this.boot++;
    this.cache = new LevelCache({
      path: join(this.dir, 'cache'),
      keyring: await loadOrCreateKeyring(join(this.dir, 'cache.key')),
      commitIntervalMs: 2,
      ...(this.fault === 'full'
        ? {
            limits: {
              maxRecords: this.world.maxRecordsWhenFull,
              maxBytes: 1e9,
              maxAgeMs: 0,
              whenFull: 'drop-oldest',
            },
          }
        : {}),
    });
    await this.cache.open();
  }

  event(type, detail, at) {
    this.events.push({
      schemaVersion: 1,
      gatewayId: this.thing,
      eventId: this.nextEventId++,
      type,
      at: new Date(at).toISOString(),
      clock: { synchronized: this.synchronized, bootId: bootOf(this.i, this.boot), monotonicMs: this.mono },
      detail,
    });
  }

  /** The device sends `count` readings between `from` and `to` (simulated ms). */
  async produce(count, from, to) {
    for (let k = 0; k < count; k++) {
      const at = Math.round(from + ((to - from) * (k + 1)) / count);
      this.mono = at - this.bootAt;
      const value = 90 + ((this.i + k) % 10);
      const wallClock = this.synchronized ? at : this.mono; // an unsynchronized Pi boots in 1970
      const record = await this.cache.append({
        gatewayId: this.thing,
        deviceId: 'spo2-bed1',
        adapter: 'rs232',
        protocol: 'kv-line',
        capturedAt: new Date(wallClock).toISOString(),
        clock: { synchronized: this.synchronized, bootId: bootOf(this.i, this.boot), monotonicMs: this.mono },
        observations: [
          { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', mdc: 150456, value, unit: '%', status: 'valid' },
        ],
      });
      this.produced.set(record.seq, {
        value,
        trueTime: at,
        bootId: bootOf(this.i, this.boot),
        mono: this.mono,
      });
    }
    // As the gateway's event monitor does: drops since the last look become one event.
    const { dropped } = await this.cache.health();
    if (dropped > this.dropped) {
      this.event('cache.records-dropped', { count: dropped - this.dropped, total: dropped }, to);
      this.dropped = dropped;
    }
  }

  /** The clock synchronizes (NTP at the window's pre-hook): correct this boot's records. */
  synchronize(at) {
    if (this.synchronized) return;
    this.synchronized = true;
    this.mono = at - this.bootAt;
    this.event(
      'clock.corrected',
      {
        bootId: bootOf(this.i, this.boot),
        monotonicMs: this.mono,
        trueTime: new Date(at).toISOString(),
        systemTime: new Date(this.mono).toISOString(),
        offsetMs: at - this.mono,
        source: 'timesyncd',
      },
      at,
    );
  }

  async window(options = {}) {
    const report = await this.uplink.openWindow(this.cache, {
      host: this.host,
      maxDurationMs: 30_000,
      ...options,
    });
    this.windows.push(report.outcome);
    return report;
  }

  /** Killed mid-window: the process dies, the cache is reopened by the next start (a new boot). */
  async killDuringWindow() {
    const controller = new AbortController();
    const window = this.window({ signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await window;
    await this.cache.close();
    this.bootAt = this.world.now();
    await this.open();
  }
}

async function pool(items, parallel, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/**
 * Runs the day; resolves the checks' findings (empty arrays when all hold) and figures.
 * `gateways` ≥ 6 covers every fault; `records` per gateway.
 */
export async function runFleetDay({ gateways = 200, records = 300, parallel = 16, log = () => {} } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'attache-fleet-day-'));
  // A full cache holds half of what its device produces between two windows.
  const world = { dir, maxRecordsWhenFull: Math.max(2, Math.floor(records / 12)), now: () => now };
  let now = DAY_START;
  const subscribers = [];
  const all = [];
  try {
    world.pki = await createTestPki(join(dir, 'pki'), { thingName: 'fleet-gw-0000' });
    world.broker = await startMosquitto({ dir: join(dir, 'broker'), pki: world.pki });
    const subscribe = async () => {
      subscribers.push(
        await subscribeTopic({
          broker: world.broker,
          pki: world.pki,
          topic: ['dt/attache/+/telemetry', 'dt/attache/+/events'],
        }),
      );
    };
    await subscribe();
    for (let i = 0; i < gateways; i++) {
      const thing = `fleet-gw-${String(i).padStart(4, '0')}`;
      await mkdir(join(dir, thing), { recursive: true });
      const certificate = await issueClientCertificate(world.pki, `gw-${i}`, thing);
      const gw = new SimulatedGateway(world, i, certificate);
      await gw.open();
      all.push(gw);
    }
    log(`${gateways} gateways ready`);

    // The consumer reads everything the subscribers received, on a simulated clock.
    const store = new MemoryStateStore();
    const consumer = new MessageConsumer({ store, now: () => now, gapWaitMs: 6 * HOUR });
    const delivered = new Map(); // `${gw}/${seq}` -> ConsumedRecord
    const gaps = [];
    const retimes = [];
    const findings = { duplicates: [], order: [], refused: [] };
    const read = subscribers.map(() => 0);
    let handled = 0;
    let cpu = 0;
    const consume = async () => {
      for (let s = 0; s < subscribers.length; s++) {
        const messages = subscribers[s].messages;
        while (read[s] < messages.length) {
          const payload = messages[read[s]++];
          const t0 = process.cpuUsage();
          let d;
          try {
            d = await consumer.ingest(payload);
          } catch (err) {
            findings.refused.push(String(err.code ?? err));
            continue;
          }
          const c = process.cpuUsage(t0);
          cpu += (c.user + c.system) / 1e6;
          handled += d.records.length + d.duplicates;
          let previous = 0;
          for (const r of d.records) {
            const key = `${r.gatewayId}/${r.seq}`;
            if (delivered.has(key)) findings.duplicates.push(key);
            if (r.seq <= previous) findings.order.push(key);
            previous = r.seq;
            delivered.set(key, r);
          }
          gaps.push(...d.gaps);
          retimes.push(...d.retimes);
        }
      }
    };

    // The day: six windows per gateway at their own hours; records in between.
    const slots = [2, 6, 10, 14, 18, 22];
    let inFlight = 0;
    let inFlightAtRestart = 0;
    for (const [w, hour] of slots.entries()) {
      const from = DAY_START + (w === 0 ? 0 : slots[w - 1]) * HOUR;
      const to = DAY_START + hour * HOUR;
      await pool(all, parallel, (gw) => gw.produce(Math.floor(records / slots.length), from, to));
      for (const gw of all) if (gw.fault === 'clock' && w === 2) gw.synchronize(to);
      now = to;
      const restartDuring = w === 3;
      const before = subscribers.reduce((n, sub) => n + sub.messages.length, 0);
      const windows = pool(all, parallel, async (gw) => {
        inFlight++;
        try {
          if (gw.fault === 'killed' && w % 2 === 1) return await gw.killDuringWindow();
          if (gw.fault === 'deadline') return await gw.window({ maxDurationMs: 400 });
          return await gw.window();
        } finally {
          inFlight--;
        }
      });
      if (restartDuring) {
        // Mid-wave: as soon as the wave's first message is through, the broker goes away.
        while (subscribers.reduce((n, sub) => n + sub.messages.length, 0) === before) {
          await new Promise((r) => setTimeout(r, 5));
        }
        inFlightAtRestart = inFlight;
        await world.broker.kill();
        await world.broker.restart();
        await subscribe();
        read.push(0);
      }
      await windows;
      await consume();
      log(`window slot ${hour}:00 done`);
    }
    // End of day: every gateway drains (no faults), then the consumer catches up.
    for (let round = 0; round < 5; round++) {
      const left = [];
      for (const gw of all) if ((await gw.cache.stats()).records > 0 || gw.events.length > 0) left.push(gw);
      if (left.length === 0) break;
      await pool(left, parallel, (gw) => gw.window({ maxDurationMs: 60_000 }));
    }
    const expected = all.reduce((n, gw) => n + gw.produced.size - gw.dropped, 0);
    const deadline = Date.now() + 30_000;
    while (delivered.size < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      await consume();
    }
    await consume();
    now = DAY_START + 48 * HOUR;
    for (const d of await consumer.sweep()) {
      gaps.push(...d.gaps);
      await d.commit();
    }

    // Checks.
    const missing = [];
    const wrong = [];
    const unexplained = [];
    const clock = [];
    let reportedDropped = 0;
    const retimed = new Set(
      retimes.flatMap((r) =>
        r.seqRanges.flatMap(([a, b]) =>
          Array.from({ length: b - a + 1 }, (_, k) => `${r.gatewayId}/${a + k}`),
        ),
      ),
    );
    for (const gw of all) {
      const droppedSeqs = new Set(
        gaps
          .filter((g) => g.gatewayId === gw.thing && g.status === 'dropped')
          .flatMap((g) => Array.from({ length: g.to - g.from + 1 }, (_, k) => g.from + k)),
      );
      // The cache may drop a record the broker already had (a window broke before its PUBACK): the
      // gateway counts it dropped, the consumer delivered it. Reported drops can only be fewer.
      if (droppedSeqs.size > gw.dropped) {
        unexplained.push(`${gw.thing}: ${droppedSeqs.size} reported dropped, gateway said ${gw.dropped}`);
      }
      reportedDropped += droppedSeqs.size;
      for (const [seq, sent] of gw.produced) {
        const got = delivered.get(`${gw.thing}/${seq}`);
        if (!got) {
          if (!droppedSeqs.has(seq)) missing.push(`${gw.thing}/${seq}`);
          continue;
        }
        if (droppedSeqs.has(seq)) wrong.push(`${gw.thing}/${seq} delivered and reported dropped`);
        if (got.observations[0]?.value !== sent.value) wrong.push(`${gw.thing}/${seq} value`);
        const time =
          got.timeSource === 'unknown' && retimed.has(`${gw.thing}/${seq}`) ? 'retimed' : got.timeSource;
        if (gw.fault === 'clock' && time === 'unknown' && sent.bootId === bootOf(gw.i, 1))
          clock.push(`${gw.thing}/${seq}`);
        if (got.timeSource === 'corrected' && Math.abs(Date.parse(got.time) - sent.trueTime) > 1)
          clock.push(`${gw.thing}/${seq} time`);
      }
      const open = (await store.get(gw.thing))?.state.gaps ?? [];
      if (open.length > 0) unexplained.push(`${gw.thing}: open gaps ${JSON.stringify(open)}`);
    }
    const outcomes = {};
    for (const gw of all) for (const o of gw.windows) outcomes[o] = (outcomes[o] ?? 0) + 1;
    return {
      produced: all.reduce((n, gw) => n + gw.produced.size, 0),
      dropped: all.reduce((n, gw) => n + gw.dropped, 0),
      reportedDropped,
      delivered: delivered.size,
      handled,
      cpuSeconds: cpu,
      gaps: gaps.length,
      outcomes,
      inFlightAtRestart,
      stateBytes: store.bytes,
      findings: { ...findings, missing, wrong, unexplained, clock },
    };
  } finally {
    for (const gw of all) await gw.cache?.close().catch(() => {});
    for (const s of subscribers) await s.stop().catch(() => {});
    await world.broker?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const gateways = Number(process.env.BENCH_GATEWAYS ?? 200);
  const records = Number(process.env.BENCH_RECORDS ?? 300);
  const t0 = Date.now();
  const r = await runFleetDay({
    gateways,
    records,
    parallel: Number(process.env.BENCH_PARALLEL ?? 16),
    log: (m) => console.log(m),
  });
  console.log(
    `fleet day: ${gateways} gateways, ${r.produced} records produced, ${r.dropped} dropped by full caches (${r.reportedDropped} of them never reached the broker), ${r.delivered} delivered once, ${r.gaps} gap reports; windows ${JSON.stringify(r.outcomes)}; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  console.log(
    `consumer: ${r.handled} records handled in ${r.cpuSeconds.toFixed(2)} s CPU (${Math.round(r.handled / r.cpuSeconds)} records/s); dedupe state ${(r.stateBytes / 1024).toFixed(1)} KiB (${Math.round(((r.stateBytes / gateways) * 1000) / 1024)} KiB per 1,000 gateways)`,
  );
  const failed = Object.entries(r.findings).filter(([, v]) => v.length > 0);
  for (const [k, v] of failed) console.log(`${k}: ${v.length} (${v.slice(0, 5).join(', ')})`);
  console.log(failed.length === 0 ? 'all checks hold' : 'CHECKS FAILED');
  // Exit at once: the uplink's native MQTT clients (aws-crt) keep a process that ran many windows
  // alive for seconds to minutes after the last one, with no JavaScript handle left.
  process.exit(failed.length === 0 ? 0 : 1);
}
