import t from 'tap';
import { S3Emulator } from '../../../test/helpers/s3-emulator.js';
import { emptyState } from '../src/gateway-state.js';
import { handler, ObjectStateStore, S3ObjectStore } from '../src/lambda/index.js';

t.test('the Lambda entry point reads its bucket, region and credentials from the environment', async (t) => {
  const s3 = await S3Emulator.start('attache-ingest-x');
  t.teardown(() => s3.stop());
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  Object.assign(process.env, {
    INGEST_BUCKET: 'attache-ingest-x',
    AWS_REGION: 'eu-central-1',
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_SESSION_TOKEN: 'token',
    S3_ENDPOINT: `${s3.endpoint}/`,
    GAP_WAIT_MS: '0',
  });
  const body = {
    schemaVersion: 1,
    gatewayId: 'gw-9',
    eventId: 3,
    type: 'cache.full',
    at: '2026-12-04T00:00:00.000Z',
    clock: { synchronized: true, bootId: '0f4c3a52-8d1e-4b7a-9c2f-6e5d4c3b2a19', monotonicMs: 1 },
    detail: { records: 10, bytes: 100 },
  };
  s3.objects.set('events/gw-9/2026/12/04/a+b.json', { body: Buffer.from(JSON.stringify(body)), etag: '"1"' });
  const out = await handler({ Records: [{ s3: { object: { key: 'events/gw-9/2026/12/04/a%2Bb.json' } } }] });
  t.match(out, { messages: 1, events: 1 });
  t.ok(s3.objects.has('consumed/events/gw-9/0000000000000003.json'));
});

t.test(
  'object state store: refuses what is not dedupe state; cannot list; stale versions refused',
  async (t) => {
    const s3 = await S3Emulator.start();
    t.teardown(() => s3.stop());
    const objects = new S3ObjectStore({
      bucket: s3.bucket,
      region: 'eu-central-1',
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: 'secret' },
    });
    const store = new ObjectStateStore(objects, 'state/');
    t.equal(await store.get('gw-1'), undefined);
    t.equal(await store.put('gw-1', emptyState(), 0), true);
    t.equal(await store.put('gw-1', emptyState(), 0), false, 'a second first put loses');
    t.equal(await store.put('gw-1', emptyState(), 1), false, 'a version never read is not written');
    t.match(await store.get('gw-1'), { version: 1 });
    t.equal(await store.put('gw-1', emptyState(), 1), true);
    await objects.put('state/gw-2.json', '{oops');
    await t.rejects(store.get('gw-2'), { code: 'ATTACHE_CONSUMER_STORE' });
    await objects.put('state/gw-3.json', '{"version":1,"state":{}}');
    await t.rejects(store.get('gw-3'), { code: 'ATTACHE_CONSUMER_STORE' });
    await t.rejects(store.list(), TypeError);
    const unsigned = new S3ObjectStore({
      bucket: s3.bucket,
      region: 'eu-central-1',
      endpoint: s3.endpoint,
      credentials: { accessKeyId: 'OTHER', secretAccessKey: 'x' },
    });
    await t.rejects(unsigned.get('state/gw-1.json'), /HTTP 403/, 'S3 errors other than 404 reject');
    await t.rejects(unsigned.put('k', '{}'), /HTTP 403/);
    t.throws(
      () =>
        new S3ObjectStore({
          bucket: '',
          region: 'x',
          credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        }),
      TypeError,
    );
    t.throws(
      () =>
        new S3ObjectStore({
          bucket: 'b',
          region: '',
          credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        }),
      TypeError,
    );
  },
);
