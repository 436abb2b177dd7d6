import { checkBatch, type UplinkConfig } from '@attache/core';
import { getFreePort, subscribeTopic } from '@attache/devkit';
import { IotCoreUplink } from '@attache/uplink';
import t from 'tap';
import {
  captureLogger,
  exitWhenComplete,
  gatewayId,
  type LogEntry,
  MemoryOutbox,
  PagedOutbox,
  parseBatches,
  seqsOf,
  startBroker,
  topic,
  uplinkConfig,
} from './fixtures/uplink-fixtures.js';

exitWhenComplete(t);
const fixture = await startBroker();
t.teardown(fixture.cleanup);

t.test('a backlog arrives once, in order, in valid batches, and leaves the outbox', async (t) => {
  const sub = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
  t.teardown(sub.stop);
  const outbox = new MemoryOutbox();
  outbox.add(2000);
  const logs: LogEntry[] = [];
  const uplink = new IotCoreUplink({
    gatewayId,
    config: uplinkConfig(fixture, { maxMessageBytes: 50_000 }),
    logger: captureLogger(logs),
  });

  const result = await uplink.openWindow(outbox);

  t.equal(result.outcome, 'drained');
  t.equal(result.error, undefined);
  t.same(outbox.seqs(), [], 'outbox empty');
  const messages = await sub.waitFor(result.messages, 30_000);
  const batches = parseBatches(messages);
  t.same(
    seqsOf(batches),
    Array.from({ length: 2000 }, (_, i) => i + 1),
    'records 1..N, each once, in order',
  );
  t.same(batches.flatMap(checkBatch), [], 'every payload passes checkBatch');
  t.ok(
    messages.every((m) => m.length <= 50_000),
    'every message within maxMessageBytes',
  );
  t.ok(batches.length > 1, 'more than one message');
  t.ok(
    batches.every((b) => b.gatewayId === gatewayId && b.count === b.records.length),
    'gatewayId and count match',
  );
  t.match(result, {
    records: 2000,
    messages: batches.length,
    bytes: messages.reduce((n, m) => n + m.length, 0),
    firstSeq: 1,
    lastSeq: 2000,
  });
  t.ok(Date.parse(result.closedAt) >= Date.parse(result.openedAt));
  t.equal(uplink.busy, false);
  // After a requested stop the SDK emits `disconnection` before `stopped` only sometimes.
  t.same(
    logs.map((e) => e.message).filter((m) => m !== 'disconnected'),
    ['window opened', 'connecting', 'connected', 'stopped', 'window closed'],
    'the mqtt5 lifecycle and the window are logged',
  );
  t.ok(logs.every((e) => e.bindings.module === 'uplink'));
  t.same(
    logs.filter((e) => e.level !== 'info'),
    [],
    'a drained window logs no warning',
  );
  const text = JSON.stringify(logs);
  t.notMatch(text, fixture.dir, 'no certificate or key path in the logs');
  t.notMatch(text, 'spo2-bed7', 'no record content in the logs');
});

t.test('a small maxMessageBytes gives many messages, counted right', async (t) => {
  const sub = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
  t.teardown(sub.stop);
  const outbox = new MemoryOutbox();
  outbox.add(300);
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { maxMessageBytes: 1024 }) });

  const result = await uplink.openWindow(outbox);

  t.equal(result.outcome, 'drained');
  const messages = await sub.waitFor(result.messages, 30_000);
  t.ok(result.messages >= 100, `${result.messages} messages for 300 records`);
  t.equal(messages.length, result.messages, 'the subscriber saw as many messages as the result counts');
  t.ok(messages.every((m) => m.length <= 1024));
  t.same(
    seqsOf(parseBatches(messages)),
    Array.from({ length: 300 }, (_, i) => i + 1),
  );
});

t.test(
  'an outbox serving pages: the same batches, built from its bytes, within maxMessageBytes',
  async (t) => {
    const sub = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
    t.teardown(sub.stop);
    const outbox = new PagedOutbox();
    outbox.add(1000, 40);
    const uplink = new IotCoreUplink({
      gatewayId,
      config: uplinkConfig(fixture, { maxMessageBytes: 20_000 }),
    });

    const result = await uplink.openWindow(outbox);

    t.equal(result.outcome, 'drained');
    t.same(outbox.seqs(), [], 'outbox empty');
    t.ok(outbox.pages > result.messages, 'read page by page (one ahead, one more to find the end)');
    t.equal(outbox.released, result.messages, "each page's buffer given back once its batch was published");
    const messages = await sub.waitFor(result.messages, 30_000);
    const batches = parseBatches(messages);
    t.same(
      seqsOf(batches),
      Array.from({ length: 1000 }, (_, i) => i + 1),
      'records 1..N, each once, in order',
    );
    t.same(batches.flatMap(checkBatch), [], 'every payload passes checkBatch');
    t.ok(
      messages.every((m) => m.length <= 20_000),
      'every message within maxMessageBytes',
    );
    t.ok(
      messages.some((m) => m.length > 19_000),
      'and filled up to it',
    );
    t.match(result, { records: 1000, messages: batches.length, firstSeq: 1, lastSeq: 1000 });
  },
);

t.test('records stored while a window drains pages are sent in that window', async (t) => {
  const outbox = new PagedOutbox();
  outbox.add(100);
  const readPage = outbox.readPage.bind(outbox);
  let added = false;
  outbox.readPage = async (options) => {
    const page = await readPage(options);
    // The read ahead finds the outbox empty; a record arrives before the window asks for it.
    if (page === null && !added) {
      added = true;
      outbox.add(1);
    }
    return page;
  };
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture) });
  const result = await uplink.openWindow(outbox);
  t.match(result, { outcome: 'drained', records: 101, lastSeq: 101 });
  t.same(outbox.seqs(), []);
});

t.test(
  'a page without the room asked for is never published: ATTACHE_INTERNAL, nothing removed',
  async (t) => {
    const outbox = new PagedOutbox();
    outbox.add(3);
    const readPage = outbox.readPage.bind(outbox);
    outbox.readPage = ({ room: _, ...options }) => readPage(options);
    const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture) });
    const result = await uplink.openWindow(outbox);
    t.match(result, { outcome: 'failed', records: 0, error: { code: 'ATTACHE_INTERNAL' } });
    t.same(outbox.seqs(), [1, 2, 3]);
  },
);

t.test('a record larger than maxMessageBytes in a page fails ATTACHE_UPLINK_PUBLISH and stays', async (t) => {
  const outbox = new PagedOutbox();
  outbox.add(3);
  outbox.add(1, 2000);
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { maxMessageBytes: 1024 }) });
  const result = await uplink.openWindow(outbox);
  t.equal(result.outcome, 'failed');
  t.equal(result.error?.code, 'ATTACHE_UPLINK_PUBLISH');
  t.equal(result.records, 3, 'the records before it were sent');
  t.same(outbox.seqs(), [4]);
});

t.test('an empty outbox drains without connecting', async (t) => {
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { port: 1 }) });
  const result = await uplink.openWindow(new MemoryOutbox());
  t.match(result, { outcome: 'drained', records: 0, messages: 0, bytes: 0, firstSeq: null, lastSeq: null });
});

t.test(
  'a closed port fails ATTACHE_UPLINK_CONNECT, keeps every record; a second window is refused while busy',
  async (t) => {
    const outbox = new MemoryOutbox();
    outbox.add(10);
    const uplink = new IotCoreUplink({
      gatewayId,
      config: uplinkConfig(fixture, { port: await getFreePort() }),
    });

    const window = uplink.openWindow(outbox);
    t.equal(uplink.busy, true);
    await t.rejects(uplink.openWindow(outbox), { code: 'ATTACHE_WINDOW_BUSY' });
    const result = await window;

    t.equal(result.outcome, 'failed');
    t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
    t.equal(result.records, 0);
    t.same(
      outbox.seqs(),
      Array.from({ length: 10 }, (_, i) => i + 1),
      'nothing removed',
    );
    t.equal(uplink.busy, false);
  },
);

t.test('unreadable certificate files fail ATTACHE_UPLINK_CONNECT without naming the path', async (t) => {
  const outbox = new MemoryOutbox();
  outbox.add(1);
  const certFile = `${fixture.dir}/missing-secret-name.crt`;
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { certFile }) });
  const result = await uplink.openWindow(outbox);
  t.equal(result.error?.code, 'ATTACHE_UPLINK_CONNECT');
  t.notMatch(result.error?.message ?? '', 'missing-secret-name');
  t.same(outbox.seqs(), [1]);
});

t.test('aborting mid-drain ends with deadline and keeps the rest', async (t) => {
  const sub = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
  t.teardown(sub.stop);
  const outbox = new MemoryOutbox();
  outbox.add(1500);
  // 'aws-iot-core' flow control caps at 100 messages/s: 1500 records in 1 KB messages take seconds.
  const config = uplinkConfig(fixture, { maxMessageBytes: 1024, flowControl: 'aws-iot-core' });
  const uplink = new IotCoreUplink({ gatewayId, config });
  const controller = new AbortController();

  const window = uplink.openWindow(outbox, { signal: controller.signal });
  await sub.waitFor(20, 30_000);
  controller.abort();
  const result = await window;

  t.equal(result.outcome, 'deadline');
  t.ok(result.records > 0 && result.records < 1500, `${result.records} records acknowledged`);
  const left = outbox.seqs();
  t.equal(left.length, 1500 - result.records, 'exactly the acknowledged records were removed');
  t.same(
    left,
    Array.from({ length: left.length }, (_, i) => 1500 - left.length + i + 1),
    'the rest is kept',
  );
});

t.test('an already aborted signal opens no connection', async (t) => {
  const outbox = new MemoryOutbox();
  outbox.add(5);
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture) });
  const result = await uplink.openWindow(outbox, { signal: AbortSignal.abort() });
  t.match(result, { outcome: 'deadline', records: 0 });
  t.equal(outbox.seqs().length, 5);
});

t.test('a record larger than maxMessageBytes fails ATTACHE_UPLINK_PUBLISH and stays', async (t) => {
  const outbox = new MemoryOutbox();
  outbox.add(3);
  outbox.add(1, 2000);
  const uplink = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { maxMessageBytes: 1024 }) });
  const result = await uplink.openWindow(outbox);
  t.equal(result.outcome, 'failed');
  t.equal(result.error?.code, 'ATTACHE_UPLINK_PUBLISH');
  t.equal(result.records, 3, 'the records before it were sent');
  t.same(outbox.seqs(), [4]);
});

t.test('a PUBACK with a failure reason code fails ATTACHE_UPLINK_PUBLISH and removes nothing', async (t) => {
  const outbox = new MemoryOutbox();
  outbox.add(50);
  // mosquitto refuses client publishes under $SYS with reason code 0x87 (not authorized). The
  // config schema forbids such a topic; the test bypasses it to get a real refusal from a real broker.
  const config = uplinkConfig(fixture, { topic: '$SYS/attache/{gatewayId}' });
  const result = await new IotCoreUplink({ gatewayId, config }).openWindow(outbox);
  t.equal(result.outcome, 'failed');
  t.equal(result.error?.code, 'ATTACHE_UPLINK_PUBLISH');
  t.match(result.error?.message, /0x87/);
  t.equal(result.records, 0);
  t.equal(outbox.seqs().length, 50, 'every record kept');
});

t.test('the constructor names a missing argument', async (t) => {
  t.throws(() => new IotCoreUplink({ gatewayId: '', config: uplinkConfig(fixture) }), {
    name: 'TypeError',
    message: /gatewayId/,
  });
  t.throws(() => new IotCoreUplink({ gatewayId, config: undefined as unknown as UplinkConfig }), {
    name: 'TypeError',
    message: /config/,
  });
});
