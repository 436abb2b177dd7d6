// The ingest Lambda on what a real gateway sent: `attache run` uploads through mosquitto (gzip
// batches, its events and state), the messages are written to an S3 emulator as the IoT rule
// `attache_ingest` writes them, and the handler turns them into records exactly once, through
// retries, a transient S3 failure, a re-delivered batch and two concurrent invocations.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createIngestHandler, S3ObjectStore } from '@attache/consumer/lambda';
import t from 'tap';
import { S3Emulator } from './helpers/s3-emulator.js';
import { Stack, thingName } from './helpers/stack.js';

const hour = 3_600_000;

t.test('the ingest handler stores what a real gateway sent, each record once', async (t) => {
  const stack = await Stack.start(t);
  // The endpoint's HTTPS Date one hour ahead: the gateway records and publishes clock.corrected.
  const time = createServer(
    { cert: await readFile(stack.pki.serverCertFile), key: await readFile(stack.pki.serverKeyFile) },
    (_req, res) => {
      res.sendDate = false;
      res.setHeader('Date', new Date(Date.now() + hour).toUTCString());
      res.writeHead(403).end('{}');
    },
  );
  await new Promise<void>((resolve) => time.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => time.close(resolve)));
  const { port } = time.address() as AddressInfo;
  await stack.writeConfig(
    stack.config({
      uplink: {
        compression: 'gzip',
        maxMessageBytes: 2048,
        trustedTime: { url: `https://localhost:${port}/` },
      },
    }),
  );
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const total = 60;
  for (let i = 0; i < total; i++) await stack.device.sendReading();
  await stack.statusUntil((s) => s.backlog.records === total, 60_000);
  const telemetry = await stack.subscribe('telemetry');
  const events = await stack.subscribe('events');
  const state = await stack.subscribe('state');
  const sync = await stack.run('sync', '--json');
  const window = JSON.parse(sync.stdout);
  t.equal(window.outcome, 'drained', 'the window drains');
  await telemetry.waitFor(window.messages, 30_000);
  await state.waitFor(1, 30_000);
  await events.waitFor(2, 30_000);
  t.ok(window.messages > 1, `several batches (${window.messages})`);

  // As the IoT rule writes them: <telemetry|events|state>/<thing>/<yyyy/MM/dd>/<uuid>.json.
  const s3 = await S3Emulator.start();
  t.teardown(() => s3.stop());
  let n = 0;
  const keys: string[] = [];
  for (const [kind, sub] of [
    ['events', events],
    ['state', state],
    ['telemetry', telemetry],
  ] as const) {
    for (const message of sub.messages) {
      const key = `${kind}/${thingName}/2026/12/04/${String(++n).padStart(4, '0')}.json`;
      s3.objects.set(key, { body: message, etag: `"${n}"` });
      keys.push(key);
    }
  }
  const notification = (list: string[]) => ({ Records: list.map((key) => ({ s3: { object: { key } } })) });
  const objects = new S3ObjectStore({
    bucket: s3.bucket,
    region: 'eu-central-1',
    endpoint: s3.endpoint,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'secret', sessionToken: 'token' },
  });
  const lines: Record<string, unknown>[] = [];
  const handler = createIngestHandler({ objects, log: (l) => lines.push(l) });

  // A transient S3 failure fails the invocation; Lambda's retry then completes it.
  s3.failPuts = 1;
  await t.rejects(handler(notification(keys)), /HTTP 500/);
  const retried = await handler(notification(keys));
  t.equal(retried.rejected, 0);
  const stored = s3.keys(`consumed/records/${thingName}/`);
  t.equal(stored.length, total, 'every record stored');
  const seqs = stored.map((k) => (s3.json(k) as { seq: number }).seq);
  t.same(
    seqs,
    Array.from({ length: total }, (_, i) => i + 1),
    'seqs 1..60, once each',
  );
  const first = s3.json(stored[0] as string) as Record<string, unknown>;
  t.match(first, {
    gatewayId: thingName,
    deviceId: 'spo2-bed7',
    kind: 'reading',
    alarm: false,
    observations: [{ referenceId: 'MDC_PULS_OXIM_SAT_O2', displayName: 'SpO₂', displayUnit: '%' }],
  });
  t.ok(['device', 'corrected', 'unknown'].includes(first.timeSource as string));
  const eventTypes = s3
    .keys(`consumed/events/${thingName}/`)
    .map((k) => (s3.json(k).event as { type: string }).type);
  t.ok(eventTypes.includes('clock.corrected'), `the gateway's clock correction is stored: ${eventTypes}`);
  t.ok(eventTypes.includes('device.connected'));
  t.match(s3.json(`consumed/state/${thingName}/latest.json`), {
    gatewayId: thingName,
    state: { version: '0.1.0' },
  });
  t.match(s3.json(`consumer-state/${thingName}.json`), { state: { watermark: total } });

  // Lambda retries the same notification; the broker re-delivers a batch (another object).
  const again = await handler(notification(keys));
  t.equal(again.records, 0, 'a retried invocation stores no record again');
  t.equal(again.events, 0);
  const copy = `telemetry/${thingName}/2026/12/04/redelivered.json`;
  s3.objects.set(copy, s3.objects.get(keys.at(-1) as string) as { body: Buffer; etag: string });
  const redelivered = await handler(notification([copy]));
  t.equal(redelivered.records, 0, 'a re-delivered batch stores nothing');
  t.ok(redelivered.duplicates > 0);
  t.equal(s3.keys(`consumed/records/${thingName}/`).length, total);

  // A refused object is set aside, not retried forever; a key outside the rule's prefixes is ignored.
  s3.objects.set(`telemetry/${thingName}/2026/12/04/bad.json`, { body: Buffer.from('{"oops'), etag: '"b"' });
  const bad = await handler(
    notification([`telemetry/${thingName}/2026/12/04/bad.json`, 'other/x.json', 'telemetry/gone/1/x.json']),
  );
  t.equal(bad.rejected, 1);
  t.ok(s3.objects.has(`consumed/rejected/telemetry/${thingName}/2026/12/04/bad.json`));
  t.match(lines, [{ msg: 'ingested' }]);
  t.ok(lines.some((l) => l.msg === 'message refused' && l.code === 'ATTACHE_CONSUMER_MALFORMED'));
  t.equal(s3.refused, 0, 'every request was signed for the key and hashed its body');
});

t.test('two invocations on one gateway at once: the conditional commit keeps records once', async (t) => {
  const s3 = await S3Emulator.start();
  t.teardown(() => s3.stop());
  const boot = '0f4c3a52-8d1e-4b7a-9c2f-6e5d4c3b2a19';
  const batch = (from: number, to: number) => {
    const records = [];
    for (let seq = from; seq <= to; seq++) {
      records.push({
        gatewayId: 'gw-2',
        deviceId: 'd1',
        adapter: 'rs232',
        protocol: 'kv-line',
        seq,
        capturedAt: '1970-01-01T00:00:05.000Z',
        clock: { synchronized: false, bootId: boot, monotonicMs: seq * 1000 },
        observations: [],
      });
    }
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 1,
        gatewayId: 'gw-2',
        firstSeq: from,
        lastSeq: to,
        count: records.length,
        sentAt: '2026-12-04T00:00:00.000Z',
        records,
      }),
    );
  };
  for (let i = 0; i < 8; i++)
    s3.objects.set(`telemetry/gw-2/d/${i}.json`, { body: batch(i * 10 + 1, i * 10 + 10), etag: `"${i}"` });
  const objects = new S3ObjectStore({
    bucket: s3.bucket,
    region: 'eu-central-1',
    endpoint: s3.endpoint,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'secret' },
  });
  const a = createIngestHandler({ objects });
  const b = createIngestHandler({ objects });
  const keys = (is: number[]) => ({
    Records: is.map((i) => ({ s3: { object: { key: `telemetry/gw-2/d/${i}.json` } } })),
  });
  const [ra, rb] = await Promise.all([a(keys([0, 2, 4, 6, 1])), b(keys([1, 3, 5, 7, 0]))]);
  t.equal((ra?.records ?? 0) + (rb?.records ?? 0), 80, 'each record delivered by exactly one invocation');
  t.equal(s3.keys('consumed/records/gw-2/').length, 80);
  t.match(s3.json('consumed/records/gw-2/0000000000000001.json'), { timeSource: 'unknown' });

  // A correction of that boot re-times what was stored with an unknown time.
  s3.objects.set('events/gw-2/d/e.json', {
    body: Buffer.from(
      JSON.stringify({
        schemaVersion: 1,
        gatewayId: 'gw-2',
        eventId: 1,
        type: 'clock.corrected',
        at: '1970-01-01T00:02:00.000Z',
        clock: { synchronized: false, bootId: boot, monotonicMs: 100_000 },
        detail: {
          bootId: boot,
          monotonicMs: 100_000,
          trueTime: '2026-12-04T10:00:00.000Z',
          systemTime: '1970-01-01T00:02:00.000Z',
          offsetMs: 1,
          source: 'broker-date',
        },
      }),
    ),
    etag: '"e"',
  });
  const corrected = await a({ Records: [{ s3: { object: { key: 'events/gw-2/d/e.json' } } }] });
  t.equal(corrected.retimed, 80);
  t.match(s3.json('consumed/records/gw-2/0000000000000001.json'), {
    timeSource: 'corrected',
    time: '2026-12-04T09:58:21.000Z',
  });
});
