import { generateKeyPairSync, sign } from 'node:crypto';
import { readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyMergePatch,
  JobStateStore,
  JobsTopics,
  parseJobDocument,
  switchSymlink,
  verifySignature,
} from '@attache/jobs';
import t from 'tap';

t.test('RFC 7396 merge patch', async (t) => {
  const target = { a: 'b', c: { d: 'e', f: 'g' }, list: [1, 2] };
  t.same(applyMergePatch(target, { a: 'z', c: { f: null }, list: [3] }), {
    a: 'z',
    c: { d: 'e' },
    list: [3],
  });
  t.same(target, { a: 'b', c: { d: 'e', f: 'g' }, list: [1, 2] }, 'the target is not changed');
  t.same(applyMergePatch({ a: 1 }, [1]), [1], 'a non-object patch replaces');
  t.same(applyMergePatch('x', { a: { b: 1 } }), { a: { b: 1 } }, 'a non-object target becomes an object');
  const once = applyMergePatch(target, { c: { d: null } });
  t.same(applyMergePatch(once, { c: { d: null } }), once, 'idempotent');
});

t.test('ECDSA P-256 signatures, DER and raw', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const content = Buffer.from('release bundle');
  const der = sign('sha256', content, { key: privateKey, dsaEncoding: 'der' }).toString('base64');
  const raw = sign('sha256', content, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64');
  t.ok(verifySignature(content, der, pem), 'DER');
  t.ok(verifySignature(content, raw, pem), 'raw r||s');
  t.notOk(verifySignature(Buffer.from('release bundlE'), der, pem), 'other content');
  t.notOk(verifySignature(content, Buffer.from('garbage').toString('base64'), pem), 'malformed signature');
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({
    type: 'spki',
    format: 'pem',
  });
  t.notOk(verifySignature(content, der, other.toString()), 'another key');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
    type: 'spki',
    format: 'pem',
  });
  t.throws(
    () => verifySignature(content, der, rsa.toString()),
    TypeError,
    'a non-P-256 key is a configuration mistake',
  );
});

t.test('job documents are validated against the schema', async (t) => {
  const artifact = { content: 'e30=', sha256: 'a'.repeat(64), size: 2 };
  const signed = { manifest: '{}', signature: 'MEUC' };
  const ok = { schemaVersion: 2, operation: 'config-update', mode: 'replace', artifact, ...signed };
  t.equal(parseJobDocument(ok).operation, 'config-update');
  const bad = [
    { ...ok, schemaVersion: 1 },
    { ...ok, operation: 'reboot' },
    { ...ok, signature: undefined },
    { ...ok, manifest: undefined },
    { ...ok, artifact: { ...artifact, signature: 'MEUC' } },
    { ...ok, artifact: { ...artifact, url: 'https://x/y' } },
    { ...ok, artifact: { ...artifact, content: undefined, url: 'http://plain/y' } },
    { schemaVersion: 2, operation: 'file-delivery', name: '../etc/passwd', artifact, ...signed },
    { schemaVersion: 2, operation: 'software-update', version: '1.0.0/../../x', artifact, ...signed },
  ];
  for (const doc of bad)
    t.throws(() => parseJobDocument(JSON.parse(JSON.stringify(doc))), { code: 'ATTACHE_MALFORMED' });
});

t.test('the job state survives a reload and forgets old records', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'state.json');
  const store = new JobStateStore(path);
  t.equal(await store.get('a', 1), undefined);
  for (let i = 0; i < 60; i++)
    await store.put({ jobId: `job-${i}`, executionNumber: 1, phase: 'done', status: 'SUCCEEDED' });
  await store.put({ jobId: 'job-59', executionNumber: 2, phase: 'applying' });
  const reloaded = new JobStateStore(path);
  t.equal((await reloaded.get('job-59', 1))?.status, 'SUCCEEDED');
  t.equal((await reloaded.get('job-59', 2))?.phase, 'applying', 'keyed by job id and execution number');
  t.equal(await reloaded.get('job-0', 1), undefined, 'the oldest were forgotten');
  t.throws(() => new JobStateStore(''), TypeError);
});

t.test('atomic symlink replacement', async (t) => {
  const dir = t.testdir({});
  await symlink('releases/1', join(dir, 'current'));
  await switchSymlink(join(dir, 'current'), 'releases/2');
  t.equal(await readlink(join(dir, 'current')), 'releases/2');
});

t.test('jobs topics', async (t) => {
  const topics = new JobsTopics('gw-1');
  t.equal(topics.notifyNext, '$aws/things/gw-1/jobs/notify-next');
  t.equal(topics.startNext, '$aws/things/gw-1/jobs/start-next');
  t.equal(topics.update('job-7'), '$aws/things/gw-1/jobs/job-7/update');
  t.throws(() => new JobsTopics('gw/1'), TypeError);
});
