import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  compareVersions,
  type JobDocument,
  parseJobDocument,
  signJobDocument,
  verifyJobManifest,
} from '@attache/jobs';
import t from 'tap';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../../../scripts/sign-job.mjs', import.meta.url));
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const content = Buffer.from('{"log":{"level":"debug"}}');
const artifact = {
  content: content.toString('base64'),
  sha256: createHash('sha256').update(content).digest('hex'),
  size: content.length,
};
const audience = { thingName: 'gw-1', thingGroups: [], now: () => Date.parse('2026-12-01T00:00:00Z') };
const unsigned = { schemaVersion: 2, operation: 'config-update', mode: 'merge-patch', artifact } as const;
const options = { target: { thing: 'gw-1' }, expiresAt: new Date('2026-12-02T00:00:00Z') };

/** `document` with its manifest replaced by `manifest`, signed with the right key. */
function resigned(document: JobDocument, manifest: unknown): JobDocument {
  const text = JSON.stringify(manifest);
  return {
    ...document,
    manifest: text,
    signature: sign('sha256', Buffer.from(text), privateKey).toString('base64'),
  };
}

t.test('a signed document verifies; a manifest of the wrong shape or date is REJECTED', async (t) => {
  const signed = signJobDocument(unsigned, privateKey, options);
  t.match(verifyJobManifest(signed, publicKeyPem, audience), {
    operation: 'config-update',
    mode: 'merge-patch',
    target: { thing: 'gw-1' },
    version: artifact.sha256.slice(0, 12),
  });
  const manifest = JSON.parse(signed.manifest) as Record<string, unknown>;
  const bad: [unknown, RegExp][] = [
    ['not json', /not JSON/],
    [{ ...manifest, format: 'other' }, /lacks/],
    [{ ...manifest, target: { thing: 'gw-1', group: 'g' } }, /lacks/],
    [{ ...manifest, target: null }, /lacks/],
    [{ ...manifest, rollback: 'yes' }, /lacks/],
    [{ ...manifest, expiresAt: 'soon' }, /expiresAt is not a date/],
  ];
  for (const [value, reason] of bad) {
    const doc =
      typeof value === 'string'
        ? {
            ...signed,
            manifest: value,
            signature: sign('sha256', Buffer.from(value), privateKey).toString('base64'),
          }
        : resigned(signed, value);
    t.throws(() => verifyJobManifest(doc, publicKeyPem, audience), { status: 'REJECTED', message: reason });
  }
  t.throws(
    () => verifyJobManifest(resigned(signed, { ...manifest, mode: 'replace' }), publicKeyPem, audience),
    {
      code: 'ATTACHE_SIGNATURE',
      message: /mode differs/,
    },
  );
  const raw = sign('sha256', Buffer.from(signed.manifest), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  t.ok(
    verifyJobManifest({ ...signed, signature: raw.toString('base64') }, publicKeyPem, audience),
    'raw r||s too',
  );
});

t.test('versions order as semantic versions', async (t) => {
  const ordered = [
    '0.9.0',
    '1.0.0-rc.1',
    '1.0.0-rc.2',
    '1.0.0-rc.10',
    '1.0.0',
    '1.0.1',
    '1.2.0',
    '1.10.0',
    '2.0.0',
  ];
  for (let i = 1; i < ordered.length; i++) {
    t.ok(
      compareVersions(ordered[i - 1] as string, ordered[i] as string) < 0,
      `${ordered[i - 1]} < ${ordered[i]}`,
    );
    t.ok(compareVersions(ordered[i] as string, ordered[i - 1] as string) > 0);
  }
  t.equal(compareVersions('1.0.0+build.7', '1.0.0'), 0, 'build metadata is ignored');
  t.ok(compareVersions('1.0.0-rc', '1.0.0-rc.1') < 0, 'fewer identifiers first');
  t.ok(compareVersions('1.0.0-beta', '1.0.0-alpha') > 0);
  t.ok(compareVersions('x', 'y') < 0, 'unparseable: as strings');
  t.equal(compareVersions('x', 'x'), 0);
});

t.test('scripts/sign-job.mjs signs what the gateway verifies', async (t) => {
  const dir = t.testdir();
  const key = join(dir, 'signing.pem');
  await writeFile(key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const document = join(dir, 'unsigned.json');
  await writeFile(
    document,
    JSON.stringify({ ...unsigned, operation: 'software-update', version: '1.2.0', mode: undefined }),
  );
  const { stdout } = await run(process.execPath, [
    script,
    '--document',
    document,
    '--key',
    key,
    '--group',
    'ward4',
    '--rollback',
  ]);
  const signed = parseJobDocument(JSON.parse(stdout));
  const manifest = verifyJobManifest(signed, publicKeyPem, {
    thingName: 'gw-9',
    thingGroups: ['ward4'],
    now: Date.now,
  });
  t.match(manifest, {
    operation: 'software-update',
    version: '1.2.0',
    target: { group: 'ward4' },
    rollback: true,
  });
  t.ok(Date.parse(manifest.expiresAt) > Date.now() + 160 * 3_600_000, 'a week by default');
  await t.rejects(
    run(process.execPath, [script, '--document', document, '--key', key]),
    { code: 2 },
    'no target',
  );
});
