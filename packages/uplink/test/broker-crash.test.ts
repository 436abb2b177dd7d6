import { subscribeTopic } from '@attache/devkit';
import { IotCoreUplink } from '@attache/uplink';
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

t.test('a broker killed mid-upload loses nothing: the next window sends the rest', async (t) => {
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const total = 3000;
  const outbox = new MemoryOutbox();
  outbox.add(total);
  const first = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
  t.teardown(first.stop);
  // 100 messages/s of 2 records each: the upload takes 15 s, long enough to kill the broker mid-way.
  const slow = new IotCoreUplink({
    gatewayId,
    config: uplinkConfig(fixture, { maxMessageBytes: 1024, flowControl: 'aws-iot-core' }),
  });

  const window = slow.openWindow(outbox);
  await first.waitFor(100, 30_000);
  await fixture.broker.kill();
  const failed = await window;

  t.equal(failed.outcome, 'failed');
  t.equal(failed.error?.code, 'ATTACHE_UPLINK_PUBLISH');
  t.ok(
    failed.records > 0 && failed.records < total,
    `${failed.records} records acknowledged before the kill`,
  );
  const kept = outbox.seqs();
  t.equal(kept.length, total - failed.records, 'only acknowledged records were removed');
  const keptSet = new Set(kept);
  const seenFirst = new Set(seqsOf(parseBatches(first.messages)));
  const removed = Array.from({ length: total }, (_, i) => i + 1).filter((seq) => !keptSet.has(seq));
  t.same(
    removed.filter((seq) => !seenFirst.has(seq)),
    [],
    'every removed record had reached the subscriber',
  );

  await fixture.broker.restart();
  const second = await subscribeTopic({ broker: fixture.broker, pki: fixture.pki, topic });
  t.teardown(second.stop);
  const fast = new IotCoreUplink({ gatewayId, config: uplinkConfig(fixture, { maxMessageBytes: 1024 }) });
  const drained = await fast.openWindow(outbox);

  t.equal(drained.outcome, 'drained');
  t.equal(drained.records, kept.length, 'the second window sent exactly what was left');
  t.same(outbox.seqs(), [], 'outbox empty');
  await second.waitFor(drained.messages, 30_000);
  const seen = new Set([...seenFirst, ...seqsOf(parseBatches(second.messages))]);
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((seq) => !seen.has(seq));
  t.same(missing, [], 'every seq reached a subscriber (duplicates allowed)');
});
