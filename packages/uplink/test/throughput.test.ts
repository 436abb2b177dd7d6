import { gunzipSync } from 'node:zlib';
import { subscribeTopic } from '@attache/devkit';
import { IotCoreUplink, type PendingEvent } from '@attache/uplink';
import t from 'tap';
import {
  exitWhenComplete,
  gatewayId,
  MemoryOutbox,
  parseBatches,
  seqsOf,
  startBroker,
  topic,
  uplinkConfig,
} from './fixtures/uplink-fixtures.js';

exitWhenComplete(t);
const fixture = await startBroker();
t.teardown(fixture.cleanup);

/** The records' seqs of compressed batch payloads, decompressed. */
function gzipSeqs(messages: Buffer[]): number[] {
  return messages.flatMap((m) => {
    const b = JSON.parse(m.toString('utf8')) as { encoding: string; recordsGzip: string; count: number };
    const records = JSON.parse(gunzipSync(Buffer.from(b.recordsGzip, 'base64')).toString('utf8')) as {
      seq: number;
    }[];
    if (records.length !== b.count) throw new Error('count mismatch');
    return records.map((r) => r.seq);
  });
}

t.test(
  '100,000 records drain with AWS IoT flow control on (gzip): each once, every message < 128 KB',
  async (t) => {
    const sub = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
    t.teardown(sub.stop);
    const outbox = new MemoryOutbox();
    const total = 100_000;
    outbox.add(total);
    const uplink = new IotCoreUplink({
      gatewayId,
      config: uplinkConfig(fixture, { flowControl: 'aws-iot-core', compression: 'gzip', maxInFlight: 100 }),
    });
    const result = await uplink.openWindow(outbox);
    t.equal(result.outcome, 'drained');
    t.equal(result.records, total);
    const messages = await sub.waitFor(result.messages, 30_000);
    const seqs = gzipSeqs(messages);
    t.equal(seqs.length, total, 'every record arrived once');
    t.same(new Set(seqs).size, total, 'no duplicate');
    t.ok(Math.max(...messages.map((m) => m.length)) < 128 * 1024, 'every message under 128 KB');
    t.ok(
      messages.every((m) => m.length <= 120_000),
      'every message within maxMessageBytes',
    );
    const big = messages.slice(0, -1).filter((m) => m.length > 100_000).length;
    t.ok(
      big >= messages.length - 2,
      `batches are filled near the limit (${big} of ${messages.length} > 100 KB)`,
    );
  },
);

t.test('compression round-trips, says so in the envelope, and plain batches are unchanged', async (t) => {
  const sub = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
  t.teardown(sub.stop);
  const plain = new MemoryOutbox();
  plain.add(500, 40);
  const zipped = new MemoryOutbox();
  zipped.add(500, 40);
  const plainResult = await new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture) }).openWindow(plain);
  const zipResult = await new IotCoreUplink({
    gatewayId,
    config: uplinkConfig(fixture, { compression: 'gzip' }),
  }).openWindow(zipped);
  const messages = await sub.waitFor(plainResult.messages + zipResult.messages, 30_000);
  const bodies = messages.map((m) => JSON.parse(m.toString('utf8')));
  const plainRecords = bodies.filter((b) => b.records).flatMap((b) => b.records);
  const envelopes = bodies.filter((b) => b.encoding);
  t.equal(envelopes.length, zipResult.messages);
  t.match(envelopes[0], {
    schemaVersion: 1,
    gatewayId,
    encoding: 'gzip',
    firstSeq: 1,
    lastSeq: 500,
    count: 500,
  });
  t.equal(envelopes[0].records, undefined);
  const unzipped = JSON.parse(gunzipSync(Buffer.from(envelopes[0].recordsGzip, 'base64')).toString('utf8'));
  t.same(unzipped, plainRecords, 'the same records, byte for byte after decompression');
  t.ok(zipResult.bytes < plainResult.bytes / 3, `gzip: ${zipResult.bytes} B vs ${plainResult.bytes} B plain`);
});

t.test('a byte budget ends the window early; the rest waits for the next window', async (t) => {
  const outbox = new MemoryOutbox();
  outbox.add(2000);
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { maxMessageBytes: 20_000 }) });
  const result = await uplink.openWindow(outbox, { maxBytes: 100_000 });
  t.match(result, { outcome: 'deadline', endedBy: 'byte-budget' });
  t.ok(
    result.bytes <= 100_000 && result.bytes > 60_000,
    `${result.bytes} bytes sent within the 100,000 budget`,
  );
  t.equal(outbox.seqs().length, 2000 - result.records, 'only acknowledged records left the outbox');
  const next = await uplink.openWindow(outbox);
  t.equal(next.outcome, 'drained');
  t.same(outbox.seqs(), []);
});

t.test('Basic Ingest: telemetry goes to $aws/rules/<rule>/<topic>', async (t) => {
  const sub = await subscribeTopic({
    broker: fixture.broker,
    pki: fixture.pki,
    topic: `$aws/rules/attache_ingest/${topic}`,
  });
  t.teardown(sub.stop);
  const outbox = new MemoryOutbox();
  outbox.add(10);
  const uplink = new IotCoreUplink({
    gatewayId,
    config: uplinkConfig(fixture, { basicIngestRule: 'attache_ingest' }),
  });
  const result = await uplink.openWindow(outbox);
  t.equal(result.outcome, 'drained');
  t.same(seqsOf(parseBatches(await sub.waitFor(1, 30_000))), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

t.test('events and state go to their topics; events leave the host only once acknowledged', async (t) => {
  const events = await subscribeTopic({
    broker: fixture.broker,
    pki: fixture.pki,
    topic: `dt/attache/${gatewayId}/events`,
  });
  t.teardown(events.stop);
  const states = await subscribeTopic({
    broker: fixture.broker,
    pki: fixture.pki,
    topic: `dt/attache/${gatewayId}/state`,
  });
  t.teardown(states.stop);
  let pending: PendingEvent[] = [1, 2].map((eventId) => ({ eventId, type: 'device.lost' }));
  const host = {
    reportState: async () => ({ version: 'test' }),
    pendingEvents: async () => pending,
    removeEvents: async (ids: number[]) => {
      pending = pending.filter((e) => !ids.includes(e.eventId));
    },
  };
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { shadowName: '' }) });
  const result = await uplink.openWindow(new MemoryOutbox(), { host });
  t.match(result, { outcome: 'drained', events: 2, records: 0 });
  t.same(pending, [], 'acknowledged events removed');
  const got = (await events.waitFor(2, 30_000)).map((m) => JSON.parse(m.toString('utf8')).eventId);
  t.same(got.sort(), [1, 2]);
  const [state] = await states.waitFor(1, 30_000);
  t.match(JSON.parse((state as Buffer).toString('utf8')), {
    schemaVersion: 1,
    gatewayId,
    state: { version: 'test' },
  });
});
