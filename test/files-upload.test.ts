import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadOrCreateKeyring } from '@attache/cache';
import type { FilesConfig } from '@attache/core';
import { createTestPki, issueClientCertificate, type TestPki } from '@attache/devkit';
import {
  CredentialsProviderClient,
  FilesUpService,
  FileUploader,
  type MultipartState,
  S3UploadClient,
  UpStore,
} from '@attache/files-up';
import t, { type Test } from 'tap';
import { CredentialsProviderEmulator, S3UploadEmulator } from './helpers/files-up-emulator.js';

const thing = 'gw-files-1';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const from = { source: 'serial:vent-1', deviceId: 'vent-1', name: 'error.log' };

let pki: TestPki;
t.before(async () => {
  pki = await createTestPki(join(t.testdirName, 'pki'), { thingName: thing });
});

async function rig(t: Test, options: { partBytes?: number; multipartAboveBytes?: number } = {}) {
  const provider = await CredentialsProviderEmulator.start(pki);
  const s3 = await S3UploadEmulator.start(pki, provider);
  t.teardown(() => Promise.all([provider.close(), s3.close()]));
  const dir = t.testdir();
  const store = new UpStore({
    path: join(dir, 'files-up'),
    keyring: await loadOrCreateKeyring(join(dir, 'cache.key')),
  });
  await store.open();
  const [cert, key, ca] = await Promise.all(
    [pki.clientCertFile, pki.clientKeyFile, pki.caFile].map((f) => readFile(f)),
  );
  const credentials = new CredentialsProviderClient({
    endpoint: provider.endpoint,
    roleAlias: provider.roleAlias,
    thingName: thing,
    cert,
    key,
    ca,
  });
  const client = new S3UploadClient({
    region: s3.region,
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    ca,
    credentials: () => credentials.credentials(),
  });
  const keyring = await loadOrCreateKeyring(join(dir, 'cache.key'));
  const makeUploader = (upStore = store) =>
    new FileUploader({
      store: upStore,
      s3: client,
      prefix: thing,
      partBytes: options.partBytes ?? 128 * 1024,
      multipartAboveBytes: options.multipartAboveBytes ?? 256 * 1024,
      forgetCredentials: () => credentials.forget(),
    });
  // The next window's process: a store opened again from disk and a new uploader.
  const reopened = async () => {
    const again = new UpStore({ path: join(dir, 'files-up'), keyring });
    await again.open();
    return makeUploader(again);
  };
  return { provider, s3, store, uploader: makeUploader(), reopened, credentials, ca };
}

t.test('a captured file arrives byte-identical with a matching checksum, then leaves the box', async (t) => {
  const { provider, s3, store, uploader } = await rig(t);
  const log = Buffer.from('12:00:01 E42 occlusion\n'.repeat(2000));
  await store.capture(log, from);
  const report = await uploader.upload();
  t.match(report, { uploaded: 1, failed: 0, remaining: 0, endedBy: 'drained', bytes: log.length });
  const [key, object] = [...s3.objects][0] ?? [];
  t.match(
    key,
    new RegExp(`^${thing}/vent-1/\\d{4}-\\d{2}-\\d{2}/${sha(log)}$`),
    'under the thing prefix, named by hash',
  );
  t.ok(object?.body.equals(log), 'byte-identical');
  t.equal(object?.checksum, createHash('sha256').update(log).digest('base64'));
  t.match(object?.metadata, { sha256: sha(log), 'device-id': 'vent-1', source: 'serial:vent-1' });
  t.notOk(JSON.stringify(object?.metadata).includes('error.log'), 'the file name is not sent');
  t.same(await store.list(), [], 'deleted from the box once S3 confirmed');
  t.equal(store.counts.uploaded, 1);
  t.equal(provider.requests, 1, 'one credentials request');
  t.same(
    s3.log.map((r) => [r.operation, r.status]),
    [['PutObject', 200]],
  );
});

t.test('a large file goes up in parts with per-part checksums and a composite checksum', async (t) => {
  const { s3, store, uploader } = await rig(t);
  const big = randomBytes(600 * 1024);
  await store.capture(big, from);
  t.match(await uploader.upload(), { uploaded: 1, remaining: 0 });
  const object = [...s3.objects.values()][0];
  t.ok(object?.body.equals(big), 'assembled byte-identical');
  t.match(object?.checksum, /-5$/, 'a composite checksum of 5 parts');
  t.same(
    s3.log.map((r) => r.operation),
    ['CreateMultipartUpload', ...Array(5).fill('UploadPart'), 'CompleteMultipartUpload'],
  );
});

t.test('a window cut mid-upload resumes next window without re-sending finished parts', async (t) => {
  const { s3, store, uploader, reopened } = await rig(t);
  const big = randomBytes(600 * 1024);
  await store.capture(big, from);
  const first = await uploader.upload({ maxBytes: 300 * 1024 });
  t.match(first, { uploaded: 0, endedBy: 'byte-budget', bytes: 256 * 1024, remaining: 1 });
  const state = await store.uploadState<MultipartState>(sha(big));
  t.same(
    state?.parts.map((p) => p.partNumber),
    [1, 2],
    'finished parts are kept durably',
  );
  t.equal(s3.objects.size, 0);
  const second = await (await reopened()).upload();
  t.match(second, { uploaded: 1, endedBy: 'drained', bytes: 600 * 1024 - 256 * 1024 });
  const parts = s3.log.filter((r) => r.operation === 'UploadPart').map((r) => r.partNumber);
  t.same(parts, [1, 2, 3, 4, 5], 'each part sent once');
  t.equal(s3.log.filter((r) => r.operation === 'CreateMultipartUpload').length, 1, 'the same upload id');
  t.ok([...s3.objects.values()][0]?.body.equals(big));
  t.same(await store.list(), []);
  t.equal(await store.uploadState(sha(big)), undefined, 'the upload state is gone with the file');
});

t.test(
  'a damaged upload is refused by S3 (BadDigest) and retried; the file stays until confirmed',
  async (t) => {
    const { s3, store, uploader } = await rig(t);
    const log = Buffer.from('report '.repeat(1000));
    await store.capture(log, from);
    s3.corruptNext = 1;
    t.match(await uploader.upload(), { uploaded: 1, failed: 0 });
    t.same(
      s3.log.map((r) => [r.operation, r.status, r.code]),
      [
        ['PutObject', 400, 'BadDigest'],
        ['PutObject', 200, undefined],
      ],
    );
    t.ok([...s3.objects.values()][0]?.body.equals(log));

    const next = Buffer.from('another report '.repeat(1000));
    await store.capture(next, from);
    s3.corruptNext = 3;
    t.match(
      await uploader.upload(),
      { uploaded: 0, failed: 1, remaining: 1 },
      'three damaged tries: kept for the next window',
    );
    t.equal(s3.objects.size, 1, 'nothing stored for it');
    t.match(await uploader.upload(), { uploaded: 1, remaining: 0 }, 'and it goes up in the next');
  },
);

t.test('S3 refusals: a transient one is retried, a denied write keeps the file', async (t) => {
  const { s3, store, uploader } = await rig(t);
  await store.capture(Buffer.from('a'.repeat(100)), from);
  s3.refuseNext = 1;
  t.match(await uploader.upload(), { uploaded: 1 }, '503 SlowDown retried');
  await store.capture(Buffer.from('b'.repeat(100)), from);
  s3.refuseNext = 1;
  s3.refuseWith = { status: 403, code: 'AccessDenied' };
  t.match(
    await uploader.upload(),
    { uploaded: 0, failed: 1, remaining: 1 },
    'a 403 is not retried in the window',
  );
});

t.test(
  'another thing prefix is denied; credentials from a certificate of another thing are refused',
  async (t) => {
    const { provider, s3, store, credentials, ca } = await rig(t);
    await store.capture(Buffer.from('x'.repeat(100)), from);
    const client = new S3UploadClient({
      region: s3.region,
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      ca,
      credentials: () => credentials.credentials(),
    });
    const other = new FileUploader({ store, s3: client, prefix: 'gw-other' });
    t.match(await other.upload(), { uploaded: 0, failed: 1 });
    t.match(s3.log.at(-1), { status: 403, code: 'AccessDenied' });

    const stranger = await issueClientCertificate(pki, 'stranger', 'gw-stranger');
    const [cert, key] = await Promise.all([stranger.certFile, stranger.keyFile].map((f) => readFile(f)));
    const wrong = new CredentialsProviderClient({
      endpoint: provider.endpoint,
      roleAlias: provider.roleAlias,
      thingName: thing,
      cert,
      key,
      ca,
    });
    await t.rejects(wrong.credentials(), { code: 'ATTACHE_FILE_UPLOAD', message: /403: Invalid thing name/ });
    const noAlias = new CredentialsProviderClient({
      endpoint: provider.endpoint,
      roleAlias: 'nope',
      thingName: thing,
      cert,
      key,
      ca,
    });
    await t.rejects(noAlias.credentials(), { code: 'ATTACHE_FILE_UPLOAD', message: /404/ });
  },
);

t.test('expired credentials are fetched again', async (t) => {
  const { provider, store, uploader } = await rig(t);
  provider.lifetimeMs = -1000; // issued already expired: S3 answers ExpiredToken
  await store.capture(Buffer.from('y'.repeat(100)), from);
  t.match(await uploader.upload(), { uploaded: 0, failed: 1 });
  t.ok(provider.requests >= 2, 'the uploader asked for new credentials after ExpiredToken');
  provider.lifetimeMs = 3_600_000;
  t.match(await uploader.upload(), { uploaded: 1 });
});

t.test('a window that stops ends the upload between requests', async (t) => {
  const { s3, store, uploader } = await rig(t);
  await store.capture(Buffer.from('z'.repeat(100)), from);
  const ac = new AbortController();
  ac.abort();
  t.match(await uploader.upload({ signal: ac.signal }), { uploaded: 0, endedBy: 'stopped', remaining: 1 });
  t.same(s3.log, [], 'nothing sent');
});

t.test(
  'a route’s devices go to their route’s bucket (data residency); a budget holds across destinations',
  async (t) => {
    const dir = t.testdir();
    const provider = await CredentialsProviderEmulator.start(pki);
    const eu = await S3UploadEmulator.start(pki, provider, 'files-eu', 'eu-central-1');
    const us = await S3UploadEmulator.start(pki, provider, 'files-us', 'us-east-1');
    t.teardown(() => Promise.all([provider.close(), eu.close(), us.close()]));
    const destination = (s3: S3UploadEmulator) => ({
      credentialsEndpoint: provider.endpoint,
      roleAlias: provider.roleAlias,
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      caFile: pki.caFile,
    });
    const files: FilesConfig = {
      maxFiles: 10,
      maxBytes: 1024 * 1024,
      maxFileBytes: 1024 * 1024,
      whenFull: 'refuse',
      deidentify: [],
      sources: [],
      upload: {
        ...destination(eu),
        priority: 'after-telemetry',
        partBytes: 5 * 1024 * 1024,
        multipartAboveBytes: 16 * 1024 * 1024,
        routes: { us: destination(us) },
      },
    };
    const service = new FilesUpService({
      config: files,
      dataDir: dir,
      keyring: await loadOrCreateKeyring(join(dir, 'cache.key')),
      thingName: thing,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      routes: { us: ['pump-us'] },
    });
    await service.start();
    t.teardown(() => service.stop());
    await service.store.capture(Buffer.alloc(1000, 1), { ...from, deviceId: 'vent-1' });
    await service.store.capture(Buffer.alloc(1000, 2), { ...from, deviceId: 'pump-us' });
    await service.store.capture(Buffer.alloc(1000, 3), { ...from, deviceId: 'pump-us' });
    const first = await service.upload({ maxBytes: 2500 });
    t.match(first, { uploaded: 2, bytes: 2000, remaining: 1, endedBy: 'byte-budget' });
    t.match(first.destinations, { default: { uploaded: 1 }, us: { uploaded: 1, endedBy: 'byte-budget' } });
    t.same(
      [...eu.objects.keys()].map((k) => k.split('/')[1]),
      ['vent-1'],
      'the default route’s bucket',
    );
    t.same(
      [...us.objects.keys()].map((k) => k.split('/')[1]),
      ['pump-us'],
      'the us route’s bucket only',
    );
    t.match(await service.upload({ maxBytes: 0 }), { uploaded: 1, remaining: 0 });
    t.match(await service.status(), { captured: 3, uploaded: 3, waiting: 0, waitingBytes: 0 });
    const broken = new FilesUpService({
      config: files,
      dataDir: dir,
      keyring: await loadOrCreateKeyring(join(dir, 'cache.key')),
      thingName: thing,
      certFile: join(dir, 'missing.crt'),
      keyFile: pki.clientKeyFile,
    });
    await broken.store.open();
    await broken.store.capture(Buffer.alloc(10, 4), from);
    t.match(
      await broken.upload({ maxBytes: 0 }),
      { uploaded: 0, failed: 2, remaining: 1 },
      'an unreadable certificate fails the window, not the gateway',
    );
  },
);

t.test('S3 confirming another checksum keeps the file; an upload S3 forgot starts again', async (t) => {
  const { s3, store, uploader } = await rig(t);
  const log = Buffer.from('x'.repeat(1000));
  await store.capture(log, from);
  s3.misreportNext = 1;
  t.match(
    await uploader.upload(),
    { uploaded: 0, failed: 1, remaining: 1 },
    'not deleted on a checksum it did not send',
  );
  t.match(await uploader.upload(), { uploaded: 1 });
  await store.capture(randomBytes(600 * 1024), from);
  t.match(await uploader.upload({ maxBytes: 200 * 1024 }), { endedBy: 'byte-budget' });
  s3.uploads.clear(); // aborted by the bucket's lifecycle rule while the box was away
  t.match(await uploader.upload(), { uploaded: 0, failed: 1 }, 'NoSuchUpload');
  t.match(await uploader.upload(), { uploaded: 1, remaining: 0 }, 'the next window starts the file again');
  t.equal(s3.log.filter((r) => r.operation === 'CreateMultipartUpload').length, 2);
});

t.test('a malformed credentials reply is refused', async (t) => {
  const { provider, credentials } = await rig(t);
  provider.malformedNext = 1;
  await t.rejects(credentials.credentials(), { code: 'ATTACHE_FILE_UPLOAD', message: /malformed/ });
  provider.malformedNext = 1;
  provider.malformedBody = 'not json';
  await t.rejects(credentials.credentials(), { code: 'ATTACHE_FILE_UPLOAD', message: /not JSON/ });
  const first = await credentials.credentials();
  t.equal(
    await credentials.credentials(),
    first,
    'valid credentials are kept until shortly before they expire',
  );
  t.throws(
    () =>
      new CredentialsProviderClient({
        endpoint: '',
        roleAlias: 'a',
        thingName: 't',
        cert: Buffer.alloc(0),
        key: Buffer.alloc(0),
      }),
    TypeError,
  );
  t.throws(
    () => new S3UploadClient({ region: '', bucket: 'b', credentials: () => credentials.credentials() }),
    TypeError,
  );
});

t.test('the window’s deadline cuts a request S3 never answers', async (t) => {
  const { s3, store, credentials, ca } = await rig(t);
  await store.capture(Buffer.from('w'.repeat(100)), from);
  const deadline = new AbortController();
  const client = new S3UploadClient({
    region: s3.region,
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    ca,
    signal: deadline.signal,
    credentials: () => credentials.credentials(),
  });
  s3.stallNext = 1;
  const uploading = new FileUploader({ store, s3: client, prefix: thing }).upload({
    signal: deadline.signal,
  });
  while (s3.log.length === 0) await new Promise((r) => setImmediate(r));
  deadline.abort();
  t.match(await uploading, { uploaded: 0, endedBy: 'stopped', remaining: 1 });
});
