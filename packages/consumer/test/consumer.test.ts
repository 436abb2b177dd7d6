import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { FileStateStore } from '../src/file-state-store.js';
import {
  type AttacheRecord,
  ConsumerError,
  displayUnit,
  isConsumerError,
  MemoryStateStore,
  MessageConsumer,
  mdcTerm,
  parseMessage,
} from '../src/index.js';

const gw = 'gw-1';
const boot = '0f4c3a52-8d1e-4b7a-9c2f-6e5d4c3b2a19';
const boot2 = '5b0d3a52-8d1e-4b7a-9c2f-6e5d4c3b2a19';

function record(seq: number, over: Partial<AttacheRecord> = {}): AttacheRecord {
  return {
    gatewayId: gw,
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    seq,
    capturedAt: new Date(Date.UTC(2026, 10, 24, 6, 0, seq)).toISOString(),
    clock: { synchronized: true, bootId: boot, monotonicMs: 1000 * seq },
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
      { code: 'MDC_PRESS_BLD_NONINV_SYS', system: 'MDC', value: 120, unit: 'mm[Hg]', status: 'valid' },
    ],
    ...over,
  };
}

function batch(records: AttacheRecord[], gzip = false): string {
  const head = {
    schemaVersion: 1,
    gatewayId: gw,
    firstSeq: records[0]?.seq,
    lastSeq: records.at(-1)?.seq,
    count: records.length,
    sentAt: '2026-11-24T07:00:00.000Z',
  };
  if (!gzip) return JSON.stringify({ ...head, records });
  const recordsGzip = gzipSync(JSON.stringify(records)).toString('base64');
  return JSON.stringify({ ...head, encoding: 'gzip', recordsGzip });
}

const seqs = (n: number, from = 1) => Array.from({ length: n }, (_, i) => record(from + i));
let eventId = 0;
function event(
  type: string,
  detail: Record<string, unknown>,
  clock = { synchronized: true, bootId: boot, monotonicMs: 5 },
) {
  eventId++;
  return JSON.stringify({
    schemaVersion: 1,
    gatewayId: gw,
    eventId,
    type,
    at: '2026-11-24T07:00:00.000Z',
    clock,
    detail,
  });
}
const topic = (kind: string) => `dt/attache/${gw}/${kind}`;

t.test('a batch, plain or gzip, becomes named records; a re-sent batch delivers nothing twice', async (t) => {
  const consumer = new MessageConsumer();
  const first = await consumer.ingest(Buffer.from(batch(seqs(3))), topic('telemetry'));
  t.same(
    first.records.map((r) => r.seq),
    [1, 2, 3],
  );
  t.equal(first.kind, 'telemetry');
  const [o1, o2] = first.records[0]?.observations ?? [];
  t.match(o1, { referenceId: 'MDC_PULS_OXIM_SAT_O2', displayName: 'SpO₂', displayUnit: '%', value: 97 });
  t.match(o2, { referenceId: 'MDC_PRESS_BLD_NONINV_SYS', displayName: 'NIBP systolic', displayUnit: 'mmHg' });
  t.equal(first.records[0]?.timeSource, 'device');
  t.equal(first.records[0]?.kind, 'reading');

  const again = await consumer.ingest(batch(seqs(3)), topic('telemetry'));
  t.same(again.records, [], 'the same batch again: nothing new');
  t.equal(again.duplicates, 3);

  const overlapping = await consumer.ingest(
    batch(seqs(4, 2), true),
    `$aws/rules/attache_ingest/${topic('telemetry')}`,
  );
  t.same(
    overlapping.records.map((r) => r.seq),
    [4, 5],
    'gzip through Basic Ingest: only the new seqs',
  );
  t.equal(overlapping.duplicates, 2);
  t.same(overlapping.gaps, []);
});

t.test('an alarm is told from a reading; unknown codes keep the device name', async (t) => {
  const consumer = new MessageConsumer();
  const alarm = record(1, {
    event: { type: 'hl7.oru-r40' },
    observations: [
      { code: 'X1', system: 'LOCAL', value: 'HI', unit: '1', status: 'questionable', source: 'ALM' },
    ],
  });
  const { records } = await consumer.ingest(batch([alarm]));
  t.match(records[0], { kind: 'device-event', alarm: true });
  t.match(records[0]?.observations[0], { displayName: 'ALM', displayUnit: '' });
  t.notOk('referenceId' in (records[0]?.observations[0] ?? {}));
  t.equal(mdcTerm(150364)?.referenceId, 'MDC_TEMP_BODY', 'MDC numbers resolve too');
  t.equal(mdcTerm('MDC_NOT_A_TERM'), undefined);
  t.equal(displayUnit('Cel'), '°C');
  t.equal(displayUnit('mg/kg'), 'mg/kg', 'an unknown unit is shown as sent');
});

t.test('a device unit that is not UCUM is shown as the device spelled it', async (t) => {
  const consumer = new MessageConsumer();
  const reading = record(1, {
    observations: [
      { code: 'X2', system: 'LOCAL', value: 7, unit: null, deviceUnit: 'bpm', status: 'valid', source: 'PR' },
    ],
  });
  const { records } = await consumer.ingest(batch([reading]));
  t.match(records[0]?.observations[0], { unit: null, displayUnit: 'bpm' });
});

t.test('bad messages are refused with a stable code, never half-delivered', async (t) => {
  const consumer = new MessageConsumer({ maxInflatedBytes: 10_000 });
  const code = async (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (err: unknown) => (err as ConsumerError).code,
    );
  t.equal(await code(consumer.ingest('{"schema')), 'ATTACHE_CONSUMER_MALFORMED');
  t.equal(await code(consumer.ingest(Buffer.from([0xff, 0xfe]))), 'ATTACHE_CONSUMER_MALFORMED', 'not UTF-8');
  t.equal(await code(consumer.ingest('[1]')), 'ATTACHE_CONSUMER_INVALID');
  const v2 = JSON.parse(batch(seqs(1)));
  v2.schemaVersion = 2;
  t.equal(await code(consumer.ingest(v2)), 'ATTACHE_CONSUMER_VERSION', 'an unknown schemaVersion');
  const badRecord = JSON.parse(batch(seqs(2)));
  badRecord.records[1].seq = 'two';
  const err = await consumer.ingest(badRecord).catch((e: unknown) => e);
  t.ok(isConsumerError(err, 'ATTACHE_CONSUMER_INVALID'));
  t.match((err as ConsumerError).issues, [{ path: '/records/1/seq' }]);
  const outOfOrder = JSON.parse(batch([record(2), record(1)]));
  outOfOrder.firstSeq = 1;
  outOfOrder.lastSeq = 2;
  t.equal(await code(consumer.ingest(outOfOrder)), 'ATTACHE_CONSUMER_INVALID', 'seqs out of order');
  const wrongCount = JSON.parse(batch(seqs(2)));
  wrongCount.count = 3;
  t.equal(await code(consumer.ingest(wrongCount)), 'ATTACHE_CONSUMER_INVALID');
  const otherGateway = JSON.parse(batch(seqs(1)));
  otherGateway.records[0].gatewayId = 'gw-2';
  t.equal(
    await code(consumer.ingest(otherGateway)),
    'ATTACHE_CONSUMER_INVALID',
    'a record of another gateway',
  );
  t.equal(
    await code(consumer.ingest(batch(seqs(1)), 'dt/attache/gw-2/telemetry')),
    'ATTACHE_CONSUMER_INVALID',
    'topic of another thing',
  );
  t.equal(await code(consumer.ingest(batch(seqs(1)), 'cmd/attache/gw-1/x')), 'ATTACHE_CONSUMER_INVALID');
  const gz = JSON.parse(batch(seqs(1), true));
  t.equal(
    await code(consumer.ingest({ ...gz, recordsGzip: 'bm90Z3ppcA==' })),
    'ATTACHE_CONSUMER_MALFORMED',
    'not gzip',
  );
  t.equal(
    await code(consumer.ingest({ ...gz, recordsGzip: 'AAAAA' })),
    'ATTACHE_CONSUMER_MALFORMED',
    'not base64',
  );
  const bomb = gzipSync(Buffer.alloc(50_000, 0x20)).toString('base64');
  t.equal(
    await code(consumer.ingest({ ...gz, recordsGzip: bomb })),
    'ATTACHE_CONSUMER_MALFORMED',
    'inflates too far',
  );
  const notJsonInside = gzipSync('nope').toString('base64');
  t.equal(await code(consumer.ingest({ ...gz, recordsGzip: notJsonInside })), 'ATTACHE_CONSUMER_MALFORMED');
  t.equal(
    await code(consumer.ingest(event('cache.full', {}))),
    'ATTACHE_CONSUMER_INVALID',
    'event without its detail',
  );
  t.equal(
    await code(consumer.ingest({ schemaVersion: 1, gatewayId: gw, at: 'x', state: {} })),
    'ATTACHE_CONSUMER_INVALID',
  );
  t.same(
    (await consumer.ingest(batch(seqs(1)))).records.length,
    1,
    'nothing of the refused messages was settled',
  );
  t.throws(() => new MessageConsumer({ gapWaitMs: -1 }), TypeError);
  t.throws(() => new MessageConsumer({ maxGaps: 0 }), TypeError);
});

t.test('events and state: events deduped by eventId; a state message passes through', async (t) => {
  const consumer = new MessageConsumer();
  const connected = event('device.connected', { deviceId: 'spo2-bed7', adapter: 'rs232' });
  t.equal((await consumer.ingest(connected, topic('events'))).events.length, 1);
  const again = await consumer.ingest(connected, topic('events'));
  t.same(again.events, []);
  t.equal(again.duplicates, 1);
  const state = {
    schemaVersion: 1,
    gatewayId: gw,
    at: '2026-11-24T07:00:00.000Z',
    state: {
      version: '0.1.0',
      startedAt: '2026-11-24T06:00:00.000Z',
      adapters: [],
      backlog: { records: 0, bytes: 0, oldestCapturedAt: null },
      cache: { full: false, dropped: 0, quarantined: 0 },
      lastWindow: null,
      clock: { synchronized: true, bootId: boot, monotonicMs: 5 },
      windowPolicies: ['manual'],
      settings: { applied: {}, refused: [] },
    },
  };
  const parsed = await parseMessage(state);
  t.equal(parsed.kind, 'state');
  t.equal((await consumer.ingest(JSON.stringify(state), topic('state'))).state?.gatewayId, gw);
  // The state's drop count explains a gap as the drop events do.
  const timed = new MessageConsumer({ gapWaitMs: 0 });
  await timed.ingest(batch([record(3)]));
  const dropped = { ...state, state: { ...state.state, cache: { full: true, dropped: 2, quarantined: 0 } } };
  const explained = await timed.ingest(dropped, topic('state'));
  t.same(
    explained.gaps.map(({ from, to, status }) => ({ from, to, status })),
    [{ from: 1, to: 2, status: 'dropped' }],
  );
  // Past the recent-event window, old ids count as settled.
  for (let i = 0; i < 300; i++)
    await consumer.ingest(event('device.lost', { deviceId: 'spo2-bed7', adapter: 'rs232' }));
  t.equal((await consumer.ingest(connected)).duplicates, 1);
});

t.test('gaps: reported after the wait, told dropped from not yet uploaded', async (t) => {
  let now = 0;
  const consumer = new MessageConsumer({ now: () => now, gapWaitMs: 60_000 });
  await consumer.ingest(batch(seqs(2)));
  const ahead = await consumer.ingest(batch(seqs(2, 11)));
  t.same(ahead.gaps, [], 'a gap is not reported before the wait');
  await consumer.ingest(batch(seqs(2, 21)));
  now = 30_000;
  t.same(await consumer.sweep(), []);
  await consumer.ingest(event('cache.records-dropped', { count: 8, total: 8 }));
  now = 60_000;
  const [swept, ...none] = await consumer.sweep();
  t.same(none, []);
  t.same(
    swept?.gaps.map(({ from, to, status }) => ({ from, to, status })),
    [
      { from: 3, to: 10, status: 'dropped' },
      { from: 13, to: 20, status: 'not-yet-uploaded' },
    ],
    'the oldest gap is what the gateway dropped; the other may still come',
  );
  await swept?.commit();
  t.same(await consumer.sweep([gw]), [], 'a gap is reported once');
  const late = await consumer.ingest(batch(seqs(3, 13)));
  t.same(
    late.records.map((r) => r.seq),
    [13, 14, 15],
    'records of a reported gap still arrive',
  );
  const explained = await consumer.ingest(event('cache.records-dropped', { count: 5, total: 13 }));
  t.same(
    explained.gaps.map(({ from, to, status }) => ({ from, to, status })),
    [{ from: 16, to: 20, status: 'dropped' }],
    'a drop event explains a gap that already waited: reported with it',
  );
  now = 200_000;
  t.same(await consumer.sweep([gw]), []);
  t.same(
    (await consumer.ingest(batch(seqs(1, 16)))).records,
    [],
    'a seq settled as dropped is not delivered later',
  );
});

t.test('too many open gaps: the oldest are abandoned, reported', async (t) => {
  const consumer = new MessageConsumer({ maxGaps: 2, gapWaitMs: 1e9 });
  await consumer.ingest(batch([record(2)]));
  await consumer.ingest(batch([record(4)]));
  const third = await consumer.ingest(batch([record(6)]));
  t.same(
    third.gaps.map(({ from, to, status }) => ({ from, to, status })),
    [{ from: 1, to: 1, status: 'abandoned' }],
  );
});

t.test('clock: unsynchronized records are corrected by clock.corrected of their boot', async (t) => {
  const consumer = new MessageConsumer();
  const unsync = (seq: number, bootId = boot) =>
    record(seq, {
      capturedAt: '1970-01-01T00:00:10.000Z',
      clock: { synchronized: false, bootId, monotonicMs: 1000 * seq },
    });
  const before = await consumer.ingest(batch([unsync(1), unsync(2), unsync(3, boot2)]));
  t.same(
    before.records.map((r) => r.timeSource),
    ['unknown', 'unknown', 'unknown'],
  );
  const correction = event(
    'clock.corrected',
    {
      bootId: boot,
      monotonicMs: 10_000,
      trueTime: '2026-11-24T06:00:10.000Z',
      systemTime: '1970-01-01T00:00:20.000Z',
      offsetMs: 1,
      source: 'timesyncd',
    },
    { synchronized: false, bootId: boot, monotonicMs: 10_000 },
  );
  const corrected = await consumer.ingest(correction, topic('events'));
  t.same(
    corrected.retimes,
    [
      {
        gatewayId: gw,
        bootId: boot,
        correction: { monotonicMs: 10_000, trueTime: '2026-11-24T06:00:10.000Z' },
        seqRanges: [[1, 2]],
      },
    ],
    'the records already delivered of that boot are named for re-timing',
  );
  t.match(corrected.events[0], { timeSource: 'corrected', time: '2026-11-24T06:00:10.000Z' });
  const after = await consumer.ingest(batch([unsync(4), unsync(5, boot2), record(6)]));
  t.same(
    after.records.map((r) => [r.timeSource, r.time]),
    [
      ['corrected', '2026-11-24T06:00:04.000Z'],
      ['unknown', '1970-01-01T00:00:10.000Z'],
      ['device', '2026-11-24T06:00:06.000Z'],
    ],
    'trueTime − (correction.monotonicMs − record.monotonicMs); another boot stays unknown',
  );
  for (let i = 0; i < 20; i++) {
    const other = `${String(i).padStart(8, '0')}-8d1e-4b7a-9c2f-6e5d4c3b2a19`;
    await consumer.ingest(
      event('clock.corrected', {
        bootId: other,
        monotonicMs: 1,
        trueTime: '2026-11-24T06:00:00.000Z',
        systemTime: '2026-11-24T06:00:00.000Z',
        offsetMs: 0,
        source: 'broker-date',
      }),
    );
  }
  t.equal(
    (await consumer.ingest(batch([unsync(7)]))).records[0]?.timeSource,
    'unknown',
    'only the latest boots are kept',
  );
});

t.test('two workers on one gateway: the later commit conflicts and is processed again', async (t) => {
  const store = new MemoryStateStore();
  const a = new MessageConsumer({ store });
  const b = new MessageConsumer({ store });
  const da = await a.receive(batch(seqs(2)));
  const db = await b.receive(batch(seqs(3)));
  await da.commit();
  const err = await db.commit().catch((e: unknown) => e);
  t.ok(isConsumerError(err, 'ATTACHE_CONSUMER_CONFLICT'));
  const retried = await b.ingest(batch(seqs(3)));
  t.same(
    retried.records.map((r) => r.seq),
    [3],
    'processed again: only what the other worker did not store',
  );
  t.ok(store.bytes > 0);
  let calls = 0;
  const flaky = new MessageConsumer({
    store: { get: store.get.bind(store), list: store.list.bind(store), put: async () => ++calls > 10 },
  });
  await t.rejects(
    flaky.ingest(batch(seqs(1, 9))),
    { code: 'ATTACHE_CONSUMER_CONFLICT' },
    'gives up after 5 tries',
  );
  const broken = new MessageConsumer({
    store: {
      get: async () => ({ state: {} as never, version: 1 }),
      list: async () => [gw],
      put: async () => true,
    },
  });
  await t.rejects(broken.ingest(batch(seqs(1))), { code: 'ATTACHE_CONSUMER_STORE' });
  const failing = new MessageConsumer({
    store: {
      get: async () => undefined,
      list: async () => [],
      put: async () => {
        throw new Error('disk');
      },
    },
  });
  await t.rejects(failing.ingest(batch(seqs(1))), /disk/, 'a store error is not retried as a conflict');
});

t.test('file store: state survives a restart; files are owner-only; bad files refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'consumer-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.throws(() => new FileStateStore(''), TypeError);
  const stateDir = join(dir, 'state');
  t.same(await new FileStateStore(stateDir).list(), []);
  const first = new MessageConsumer({ store: new FileStateStore(stateDir) });
  await first.ingest(batch(seqs(5)));
  const restarted = new MessageConsumer({ store: new FileStateStore(stateDir) });
  const again = await restarted.ingest(batch(seqs(6)));
  t.same(
    again.records.map((r) => r.seq),
    [6],
    'after a restart only the new record is delivered',
  );
  t.same(await new FileStateStore(stateDir).list(), [gw]);
  t.equal((await stat(join(stateDir, `${gw}.json`))).mode & 0o777, 0o600);
  t.match(JSON.parse(await readFile(join(stateDir, `${gw}.json`), 'utf8')), {
    version: 2,
    state: { watermark: 6 },
  });
  const store = new FileStateStore(stateDir);
  t.equal(await store.put(gw, (await store.get(gw))?.state as never, 1), false, 'a stale version is refused');
  await writeFile(join(stateDir, 'gw-x.json'), '{oops');
  await t.rejects(store.get('gw-x'), { code: 'ATTACHE_CONSUMER_STORE' });
  await writeFile(join(stateDir, 'gw-y.json'), '{"version":1,"state":{"v":9}}');
  await t.rejects(store.get('gw-y'), { code: 'ATTACHE_CONSUMER_STORE' });
  await writeFile(join(dir, 'file'), '');
  await t.rejects(new FileStateStore(join(dir, 'file')).get('a'), { code: 'ENOTDIR' });
  await t.rejects(new FileStateStore(join(dir, 'file')).list(), { code: 'ENOTDIR' });
  t.ok(new ConsumerError('ATTACHE_CONSUMER_STORE', 'x') instanceof Error);
});

t.test('records awaiting a correction are kept as at most 64 ranges per boot', async (t) => {
  const consumer = new MessageConsumer();
  const records = Array.from({ length: 140 }, (_, i) =>
    record(i + 1, { clock: { synchronized: i % 2 === 1, bootId: boot2, monotonicMs: i } }),
  );
  await consumer.ingest(batch(records));
  const { retimes } = await consumer.ingest(
    event('clock.corrected', {
      bootId: boot2,
      monotonicMs: 500,
      trueTime: '2026-11-24T06:00:10.000Z',
      systemTime: '2026-11-24T06:00:00.000Z',
      offsetMs: 10_000,
      source: 'broker-date',
    }),
  );
  const ranges = retimes[0]?.seqRanges ?? [];
  t.equal(ranges.length, 64);
  t.same(ranges[0]?.[0], 1, 'the first untimed record is still covered');
  t.same(ranges.at(-1), [139, 139]);
});
