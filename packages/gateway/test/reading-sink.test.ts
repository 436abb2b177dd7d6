import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { type AttacheRecord, type DeviceReading, validateConfig } from '@attache/core';
import { recordingLogger } from '@attache/devkit';
import t, { type Test } from 'tap';
import { routedSink } from '../src/reading-sink.js';

const config = validateConfig({
  version: 1,
  gateway: { id: 'gw-1' },
  devices: ['lab-1', 'lab-2'].map((id) => ({
    id,
    adapter: 'ethernet',
    endpoint: { mode: 'listen', host: '127.0.0.1', port: 2575, allow: ['127.0.0.1'] },
    format: { kind: 'hl7-mllp' },
  })),
});

function reading(deviceId: string, patientId: string, n: number, key: string): DeviceReading {
  return {
    deviceId,
    adapter: 'ethernet',
    protocol: 'hl7-mllp',
    receivedAt: Date.UTC(2026, 11, 5),
    monotonicMs: 1000,
    fields: [],
    markers: [],
    raw: Buffer.from('MSH|^~\\&|LAB'),
    observations: [{ code: '718-7', system: 'LOINC', value: n, unit: 'g/dL', status: 'valid' }],
    patientId,
    idempotencyKey: key,
  };
}

async function opened(t: Test, name: string): Promise<LevelCache> {
  const dir = t.testdir();
  const cache = new LevelCache({ path: `${dir}/${name}`, keyring: await loadOrCreateKeyring(`${dir}/key`) });
  await cache.open();
  t.teardown(() => cache.close());
  return cache;
}

const stored = async (cache: LevelCache) =>
  (await cache.read({ afterSeq: 0, limit: 100, maxBytes: 1e9 })).map(
    (r) => JSON.parse(r.json) as AttacheRecord,
  );

t.test(
  "all(): a message's readings normalized, then stored together; a re-send stores nothing",
  async (t) => {
    const cache = await opened(t, 'cache');
    const outbox = await opened(t, 'outbox');
    const live: AttacheRecord[] = [];
    const sink = routedSink(
      config,
      cache,
      (id) => (id === 'lab-2' ? outbox : undefined),
      recordingLogger([]),
      new Set([(r: AttacheRecord) => live.push(r)]),
    );
    const message = [reading('lab-1', 'MRN-A', 1, 'hl7:m1:1'), reading('lab-1', 'MRN-B', 2, 'hl7:m1:2')];
    await sink.all?.(message);
    const records = await stored(cache);
    t.same(
      records.map((r) => r.observations[0]?.value),
      [1, 2],
    );
    const [a, b] = records.map((r) => r.patient?.token);
    t.ok(a && b && a !== b, 'each patient its own token');
    t.notMatch(JSON.stringify(records), /MRN-/, 'no identifier in the records');
    t.equal(live.length, 2, 'the live listeners get each record');
    await sink.all?.(message);
    t.equal((await stored(cache)).length, 2, 'the re-sent message is recognised');
    t.equal(live.length, 2);

    const bad = { ...reading('lab-1', 'MRN-C', 3, 'hl7:m2:2') };
    delete bad.observations;
    await t.rejects(sink.all?.([reading('lab-1', 'MRN-C', 4, 'hl7:m2:1'), bad]) ?? Promise.resolve(), {
      code: 'ATTACHE_MALFORMED',
    });
    t.equal((await stored(cache)).length, 2, 'one reading cannot be normalized: none is stored');

    await sink.all?.([reading('lab-2', 'MRN-D', 5, 'hl7:m3:1'), reading('lab-2', 'MRN-E', 6, 'hl7:m3:2')]);
    t.same(
      (await stored(outbox)).map((r) => r.observations[0]?.value),
      [5, 6],
      "a routed device's message goes to its route's outbox",
    );
    await sink(reading('lab-1', 'MRN-A', 7, 'hl7:m4'));
    t.equal((await stored(cache)).length, 3, 'single readings still go one by one');
  },
);
