// Signed job manifests, end to end through the Jobs emulator on mosquitto: each way of reusing or
// forging a job a hospital's security team would try, and what the gateway reports for it.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDeliveryHandler } from '@attache/jobs';
import t from 'tap';
import { JobsWorld, signedJob, thingName } from './helpers/jobs-fixtures.js';

// The AWS CRT's MQTT clients can hold the event loop: exit once tap is done.
t.on('complete', () => setImmediate(() => process.exit()));

const delivery = (name: string, artifact: unknown) => ({
  schemaVersion: 2,
  operation: 'file-delivery',
  name,
  artifact,
});

t.test('every job not signed for this gateway, now, and for exactly this document is REJECTED', async (t) => {
  const world = await JobsWorld.start(t);
  world.agentOptions = { thingGroups: ['ward4'] };
  const content = randomBytes(5000);
  const other = randomBytes(5000);
  const url = world.server.serve('lib.bin', content);
  const otherUrl = world.server.serve('other.bin', other);
  const key = world.key.privateKey;

  await world.addJob('for-us', delivery('a.bin', world.artifact(content, { url })));
  const groupContent = randomBytes(5000);
  const groupUrl = world.server.serve('group.bin', groupContent);
  await world.addJob('for-our-group', delivery('b.bin', world.artifact(groupContent, { url: groupUrl })), {
    target: { group: 'ward4' },
  });
  await world.addJob('for-another-thing', delivery('c.bin', world.artifact(content, { url })), {
    target: { thing: 'gw-ward9' },
  });
  await world.addJob('for-another-group', delivery('d.bin', world.artifact(content, { url })), {
    target: { group: 'ward9' },
  });
  await world.addJob('expired', delivery('e.bin', world.artifact(content, { url })), {
    expiresAt: new Date(Date.now() - 1000),
  });
  // A genuine signed job, its artifact swapped for another file (hash and URL both changed).
  const genuine = signedJob(delivery('f.bin', world.artifact(content, { url })), key, thingName);
  await world.emulator.addJob('swapped-artifact', {
    ...genuine,
    artifact: world.artifact(other, { url: otherUrl }),
  });
  // The same signature under another file name (or, for a release, another version label).
  await world.emulator.addJob('renamed', { ...genuine, name: 'g.bin' });
  // A document signed by the right key, then its manifest edited (another thing) and the signature kept.
  const manifest = JSON.parse(genuine.manifest) as Record<string, unknown>;
  await world.emulator.addJob('edited-manifest', {
    ...genuine,
    manifest: JSON.stringify({
      ...manifest,
      target: { thing: thingName },
      expiresAt: '2099-01-01T00:00:00Z',
    }),
  });
  // The format before manifests: a signature over the artifact's bytes only.
  await world.emulator.addJob('schema-v1', {
    ...delivery('h.bin', world.artifact(content, { url })),
    schemaVersion: 1,
  });

  const handlers = { 'file-delivery': new FileDeliveryHandler(world.files) };
  const result = await world.window(handlers);
  const outcome = Object.fromEntries(
    result.jobs.map((j) => [j.jobId, `${j.status} ${j.statusDetails.reason ?? ''}`]),
  );
  t.match(outcome, {
    'for-us': 'SUCCEEDED',
    'for-our-group': 'SUCCEEDED',
    'for-another-thing': /^REJECTED the job is signed for thing gw-ward9, not for this gateway/,
    'for-another-group': /^REJECTED the job is signed for thing group ward9/,
    expired: /^REJECTED the job expired at /,
    'swapped-artifact': /^REJECTED the document's sha256 differs from its signed manifest/,
    renamed: /^REJECTED the document's name differs from its signed manifest/,
    'edited-manifest': /^REJECTED bad signature: the job manifest is not signed/,
    'schema-v1': /^REJECTED unsigned job document/,
  });
  t.equal(result.jobs.length, 9, 'every job was answered in the one window');
  t.same(
    (await world.files.list()).map((f) => f.name).sort(),
    ['a.bin', 'b.bin'],
    'only the two jobs signed for this gateway delivered anything',
  );
  t.same(
    world.server.requests.map((r) => r.path),
    ['/lib.bin', '/group.bin'],
    'the refused jobs were refused before any download',
  );
  t.same(await readdir(join(world.dataDir, 'jobs', 'artifacts', 'objects')), [], 'nothing staged');
});
