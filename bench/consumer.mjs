// @attache/consumer: records/s through parse + validate + dedupe + names on one core, and the size of
// the dedupe state per 1,000 gateways. Messages are built like the gateway's (batches of consecutive
// records, `BENCH_BATCH` per message), plain and gzip; every batch is delivered twice (at least once).
import { gzipSync } from 'node:zlib';
import { MemoryStateStore, MessageConsumer } from '@attache/consumer';

const gateways = Number(process.env.BENCH_GATEWAYS ?? 1000);
const perGateway = Number(process.env.BENCH_RECORDS_PER_GATEWAY ?? 200);
const batchSize = Number(process.env.BENCH_BATCH ?? 100);
const boot = '0f4c3a52-8d1e-4b7a-9c2f-6e5d4c3b2a19';

function record(gatewayId, seq) {
  return {
    gatewayId,
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    seq,
    capturedAt: new Date(Date.UTC(2026, 10, 24) + seq * 1000).toISOString(),
    clock: { synchronized: seq > 10, bootId: boot, monotonicMs: seq * 1000 },
    observations: [
      {
        code: 'MDC_PULS_OXIM_SAT_O2',
        system: 'MDC',
        mdc: 150456,
        value: 97,
        unit: '%',
        status: 'valid',
        source: 'SPO2',
      },
      {
        code: 'MDC_PULS_OXIM_PULS_RATE',
        system: 'MDC',
        mdc: 149530,
        value: 72,
        unit: '/min',
        status: 'valid',
        source: 'HR',
      },
    ],
  };
}

function messages(gzip) {
  const out = [];
  for (let g = 0; g < gateways; g++) {
    const gatewayId = `gw-${g}`;
    // One gap per gateway (seq 11..20 never sent), so that state holds an open gap as in the field.
    const seqs = Array.from({ length: perGateway + 10 }, (_, i) => i + 1).filter((s) => s < 11 || s > 20);
    for (let i = 0; i < seqs.length; i += batchSize) {
      const records = seqs.slice(i, i + batchSize).map((s) => record(gatewayId, s));
      const head = {
        schemaVersion: 1,
        gatewayId,
        firstSeq: records[0].seq,
        lastSeq: records.at(-1).seq,
        count: records.length,
        sentAt: '2026-11-24T07:00:00.000Z',
      };
      const body = gzip
        ? { ...head, encoding: 'gzip', recordsGzip: gzipSync(JSON.stringify(records)).toString('base64') }
        : { ...head, records };
      out.push({ topic: `dt/attache/${gatewayId}/telemetry`, payload: Buffer.from(JSON.stringify(body)) });
    }
  }
  return out;
}

for (const gzip of [false, true]) {
  const list = messages(gzip);
  const store = new MemoryStateStore();
  const consumer = new MessageConsumer({ store, gapWaitMs: 1e12 });
  let delivered = 0;
  let duplicates = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (const m of [...list, ...list]) {
    const d = await consumer.ingest(m.payload, m.topic);
    delivered += d.records.length;
    duplicates += d.duplicates;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const handled = delivered + duplicates;
  console.log(
    `${gzip ? 'gzip ' : 'plain'}: ${gateways} gateways, ${handled} records (${delivered} new, ${duplicates} duplicates) in ${list.length * 2} messages, ${seconds.toFixed(2)} s = ${Math.round(handled / seconds)} records/s; CPU ${((cpuSeconds / handled) * 1e6).toFixed(1)} µs/record`,
  );
  if (!gzip) {
    const bytes = store.bytes;
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const states = [];
    for (const id of await store.list()) states.push((await store.get(id)).state);
    global.gc?.();
    const heap = process.memoryUsage().heapUsed - heap0;
    console.log(
      `dedupe state: ${(bytes / 1024).toFixed(1)} KiB as JSON per ${gateways} gateways (${Math.round(bytes / gateways)} B each, one open gap, one boot awaiting a correction)` +
        (global.gc ? `; ${(heap / 1024).toFixed(1)} KiB of heap when all are loaded` : ''),
    );
    states.length = 0;
  }
}
