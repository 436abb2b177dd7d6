// File delivery through AWS IoT Jobs (emulated on the test mosquitto) with HTTPS downloads from a
// local server: resumed across windows, verified by its signed manifest, size and SHA-256.
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileDeliveryHandler } from '@attache/jobs';
import t from 'tap';
import { JobsWorld, sha256, signedJob, signingKey, thingName } from './helpers/jobs-fixtures.js';

// The AWS CRT's MQTT clients can hold the event loop until garbage collection: the root test
// ends after its subtests (t.end() below), not when the loop drains, and the process exits then.
t.on('complete', () => setImmediate(() => process.exit()));

const document = (name: string, artifact: unknown) => ({
  schemaVersion: 2,
  operation: 'file-delivery',
  name,
  artifact,
});

t.test('a file delivery starts in one window and completes in the next', async (t) => {
  const world = await JobsWorld.start(t);
  const handlers = { 'file-delivery': new FileDeliveryHandler(world.files) };
  const content = randomBytes(3 * 1024 * 1024);
  const url = world.server.serve('druglib.bin', content);
  await world.addJob('deliver-1', document('druglib.bin', world.artifact(content, { url })));

  world.server.cutNextAt(1024 * 1024 + 17);
  const first = await world.window(handlers);
  t.equal(first.jobs[0]?.status, 'IN_PROGRESS', 'the first window ends mid-download');
  t.ok(first.interrupted);
  const execution = world.emulator.executions.get('deliver-1');
  t.equal(execution?.status, 'IN_PROGRESS', 'the cloud sees the job in progress');
  t.equal(execution?.statusDetails.step, 'downloading');
  t.match(
    execution?.updates.at(-1)?.statusDetails.interrupted,
    /download interrupted at \d+ bytes/,
    'with why',
  );
  t.ok(Number(execution?.updates.at(-1)?.statusDetails.received) >= 1024 * 1024, 'and how much is held');
  t.same(await world.files.list(), [], 'nothing delivered yet');

  const second = await world.window(handlers);
  t.equal(second.jobs[0]?.status, 'SUCCEEDED');
  t.equal(execution?.status, 'SUCCEEDED', 'the cloud sees SUCCEEDED');
  const resumed = world.server.requests.at(-1)?.range;
  t.match(resumed, /^bytes=\d+-$/, 'the second window resumed with a Range request');
  t.ok(Number(/\d+/.exec(resumed ?? '')?.[0]) >= 1024 * 1024, 'from the bytes already held');
  t.ok(world.server.bytesServed < content.length + 512 * 1024, 'the held bytes were not fetched again');
  const [stored] = await world.files.list();
  t.equal(stored?.name, 'druglib.bin');
  t.same(await world.files.read(sha256(content)), content, 'the delivered file is the sent one');
  t.same(await readdir(join(world.dataDir, 'jobs', 'artifacts', 'objects')), [], 'the staged copy is gone');
  t.same(
    execution?.updates.map((u) => `${u.status} ${u.statusDetails.step ?? ''}`.trim()),
    [
      'IN_PROGRESS downloading',
      'IN_PROGRESS downloading', // the window ended: statusDetails.interrupted says why
      'IN_PROGRESS downloading',
      'IN_PROGRESS applying',
      'SUCCEEDED',
    ],
    'progress, interruption, progress, then the terminal status',
  );
});

t.test(
  'wrong hash, bad signature, truncated file and unsigned are each REJECTED and nothing is delivered',
  async (t) => {
    const world = await JobsWorld.start(t);
    const handlers = { 'file-delivery': new FileDeliveryHandler(world.files) };
    const content = randomBytes(200_000);
    const url = world.server.serve('device.cfg', content);

    const wrongHash = { ...world.artifact(content, { url }), sha256: sha256(Buffer.from('other')) };
    const otherKey = signingKey();
    const badSignature = signedJob(
      document('b.cfg', world.artifact(content, { url })),
      otherKey.privateKey,
      thingName,
    );
    const truncatedUrl = world.server.serve('short.cfg', content.subarray(0, 150_000));
    const truncated = world.artifact(content, { url: truncatedUrl });
    const unsigned = { ...document('d.cfg', world.artifact(content, { url })), schemaVersion: 1 };
    const tamperedInline = {
      ...world.artifact(content, { inline: true }),
      content: randomBytes(200_000).toString('base64'),
    };
    await world.addJob('wrong-hash', document('a.cfg', wrongHash));
    await world.emulator.addJob('bad-signature', badSignature);
    await world.addJob('truncated', document('c.cfg', truncated));
    await world.emulator.addJob('unsigned', unsigned);
    await world.addJob('tampered-inline', document('e.cfg', tamperedInline));

    const result = await world.window(handlers);
    t.same(
      result.jobs.map((j) => [j.jobId, j.status]),
      [
        ['wrong-hash', 'REJECTED'],
        ['bad-signature', 'REJECTED'],
        ['truncated', 'REJECTED'],
        ['unsigned', 'REJECTED'],
        ['tampered-inline', 'REJECTED'],
      ],
    );
    t.notOk(result.interrupted, 'the window ran every pending job');
    const reasons = Object.fromEntries(
      [...world.emulator.executions.values()].map((e) => [e.jobId, e.statusDetails.reason ?? '']),
    );
    t.match(reasons['wrong-hash'], /wrong hash/);
    t.match(reasons['bad-signature'], /bad signature/);
    t.match(reasons.truncated, /truncated/);
    t.match(reasons.unsigned, /unsigned job document/);
    t.match(reasons['tampered-inline'], /wrong hash/);
    t.same(await world.files.list(), [], 'nothing was delivered');
    t.same(
      await readdir(join(world.dataDir, 'jobs', 'artifacts', 'objects')),
      [],
      'nothing unproven stays staged',
    );
  },
);

t.test('a tampered staged artifact is detected and the job REJECTED', async (t) => {
  const world = await JobsWorld.start(t);
  const handlers = { 'file-delivery': new FileDeliveryHandler(world.files) };
  const content = randomBytes(64_000);
  const url = world.server.serve('lib.bin', content);
  // A previous window staged it completely; then its bytes changed on disk.
  await world.staging.put(content, { sha256: sha256(content), size: content.length });
  const tampered = Buffer.from(content);
  tampered[100] ^= 0xff;
  await writeFile(join(world.dataDir, 'jobs', 'artifacts', 'objects', sha256(content)), tampered);
  await world.addJob('tampered', document('lib.bin', world.artifact(content, { url })));

  const result = await world.window(handlers);
  t.equal(result.jobs[0]?.status, 'REJECTED');
  t.match(world.emulator.executions.get('tampered')?.statusDetails.reason, /no longer matches/);
  t.same(await world.files.list(), [], 'the tampered file was not delivered');
  t.equal(world.server.requests.length, 0, 'nothing was fetched: the staged copy was used and caught');
});

t.test('a job already applied is not applied twice when its terminal update was lost', async (t) => {
  const world = await JobsWorld.start(t);
  let applied = 0;
  const delivery = new FileDeliveryHandler(world.files);
  const handlers = {
    'file-delivery': {
      apply: (context: Parameters<FileDeliveryHandler['apply']>[0]) => {
        applied++;
        return delivery.apply(context);
      },
    },
  };
  const content = Buffer.from('{"drugs":[]}\n');
  await world.addJob('once', document('drugs.json', world.artifact(content, { inline: true })));
  t.equal((await world.window(handlers)).jobs[0]?.status, 'SUCCEEDED');
  world.emulator.forgetTerminal('once');

  const again = await world.window(handlers);
  t.equal(again.jobs[0]?.status, 'SUCCEEDED', 'the terminal status is reported again');
  t.ok(again.jobs[0]?.alreadyApplied, 'from the state file');
  t.equal(applied, 1, 'the handler ran once');
  t.equal(world.emulator.executions.get('once')?.status, 'SUCCEEDED');
});

t.test('download throughput from the local HTTPS server', async (t) => {
  const world = await JobsWorld.start(t);
  const handlers = { 'file-delivery': new FileDeliveryHandler(world.files) };
  const content = randomBytes(32 * 1024 * 1024);
  const url = world.server.serve('big.bin', content);
  await world.addJob('big', document('big.bin', world.artifact(content, { url })));
  const result = await world.window(handlers);
  t.equal(result.jobs[0]?.status, 'SUCCEEDED');
  const durationMs = result.jobs[0]?.durationMs ?? 1;
  t.comment(
    `32 MiB delivered (download, fsync per 256 KiB, SHA-256, signature, store) in ${durationMs} ms: ${((32 * 1000) / durationMs).toFixed(1)} MiB/s`,
  );
});

t.end();
