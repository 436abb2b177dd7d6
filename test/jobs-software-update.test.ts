// Software updates through AWS IoT Jobs at the library level: real bundles (tar.gz of a release
// tree) installed under a temp root, `current` switched and rolled back; no real service restart.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type HealthReport, ReleaseInstaller } from '@attache/jobs';
import t from 'tap';
import { JobsWorld, signedJob, signingKey, thingName } from './helpers/jobs-fixtures.js';

// The AWS CRT's MQTT clients can hold the event loop until garbage collection: the root test
// ends after its subtests (t.end() below), not when the loop drains, and the process exits then.
t.on('complete', () => setImmediate(() => process.exit()));

const run = promisify(execFile);
const childScript = fileURLToPath(new URL('./helpers/jobs-apply-child.ts', import.meta.url));

/** A release root with 1.0.0 running, and a data dir holding a cache and keys. */
async function installation(world: JobsWorld) {
  const root = join(world.dir, 'opt');
  await mkdir(join(root, 'releases', '1.0.0', 'dist'), { recursive: true });
  await writeFile(join(root, 'releases', '1.0.0', 'dist', 'bin.js'), 'console.log("1.0.0")\n');
  await symlink('releases/1.0.0', join(root, 'current'));
  await mkdir(join(world.dataDir, 'cache'), { recursive: true });
  await mkdir(join(world.dataDir, 'keys'), { recursive: true });
  await writeFile(join(world.dataDir, 'cache', '000001.ldb'), 'records');
  await writeFile(join(world.dataDir, 'keys', 'cache.key'), '{"k":"secret"}');
  return root;
}

/** The bundle of release `version`: a tar.gz of its tree. */
async function bundle(world: JobsWorld, version: string): Promise<Buffer> {
  const tree = join(world.dir, `tree-${version}`);
  await mkdir(join(tree, 'dist'), { recursive: true });
  await writeFile(join(tree, 'dist', 'bin.js'), `console.log(${JSON.stringify(version)})\n`);
  await writeFile(join(tree, 'package.json'), JSON.stringify({ name: 'attache', version }));
  await writeFile(join(tree, 'dist', 'padding.bin'), randomBytes(400_000));
  const file = join(world.dir, `attache-${version}.tar.gz`);
  await run('tar', ['-czf', file, '-C', tree, '.']);
  return readFile(file);
}

/** SHA-256 of every file of the data dir except the jobs' own state. */
async function dataDigest(world: JobsWorld): Promise<string> {
  const hash = createHash('sha256');
  for (const sub of ['cache', 'keys']) {
    for (const name of (await readdir(join(world.dataDir, sub))).sort()) {
      hash.update(name).update(await readFile(join(world.dataDir, sub, name)));
    }
  }
  return hash.digest('hex');
}

function installer(root: string, health: () => HealthReport) {
  const calls = { restarts: 0 };
  const handler = new ReleaseInstaller({
    root,
    restart: async () => {
      calls.restarts++;
    },
    healthCheck: async () => health(),
  });
  return { calls, handlers: { 'software-update': handler } };
}

const job = (version: string, artifact: unknown) => ({
  schemaVersion: 2,
  operation: 'software-update',
  version,
  artifact,
});

t.test(
  'a release downloaded across two windows is installed beside the running one and switched to',
  async (t) => {
    const world = await JobsWorld.start(t);
    const root = await installation(world);
    const before = await dataDigest(world);
    const content = await bundle(world, '1.1.0');
    const url = world.server.serve('attache-1.1.0.tar.gz', content);
    await world.addJob('sw-1', job('1.1.0', world.artifact(content, { url })));
    const { calls, handlers } = installer(root, () => ({ healthy: true }));

    world.server.cutNextAt(150_000);
    t.equal((await world.window(handlers)).jobs[0]?.status, 'IN_PROGRESS', 'cut in the first window');
    t.equal(await readlink(join(root, 'current')), 'releases/1.0.0', 'still on 1.0.0 meanwhile');

    const second = await world.window(handlers);
    t.equal(second.jobs[0]?.status, 'SUCCEEDED');
    t.equal(await readlink(join(root, 'current')), 'releases/1.1.0', 'current names the new release');
    t.equal(await readlink(join(root, 'previous')), 'releases/1.0.0', 'previous names the old one');
    t.equal(await readFile(join(root, 'current', 'dist', 'bin.js'), 'utf8'), 'console.log("1.1.0")\n');
    t.equal(
      await readFile(join(root, 'releases', '1.0.0', 'dist', 'bin.js'), 'utf8'),
      'console.log("1.0.0")\n',
      'the old release is intact',
    );
    t.equal(calls.restarts, 1);
    t.equal(await dataDigest(world), before, 'the cache and keys are untouched');
    t.same(world.emulator.executions.get('sw-1')?.statusDetails.version, '1.1.0');
  },
);

t.test('a release that fails its health check is rolled back and the job FAILED', async (t) => {
  const world = await JobsWorld.start(t);
  const root = await installation(world);
  const before = await dataDigest(world);
  const content = await bundle(world, '1.2.0');
  await world.addJob(
    'sw-bad',
    job('1.2.0', world.artifact(content, { url: world.server.serve('b.tgz', content) })),
  );
  let checks = 0;
  const { calls, handlers } = installer(root, () => {
    checks++;
    return { healthy: false, reason: 'adapter spo2-bed7 did not start' };
  });
  const result = await world.window(handlers);
  t.equal(result.jobs[0]?.status, 'FAILED');
  t.match(
    world.emulator.executions.get('sw-bad')?.statusDetails.reason,
    /1\.2\.0 unhealthy: adapter spo2-bed7 did not start; rolled back to releases\/1\.0\.0/,
  );
  t.equal(await readlink(join(root, 'current')), 'releases/1.0.0', 'current is back on 1.0.0');
  t.equal(calls.restarts, 2, 'restarted onto the new release, then back onto the old one');
  t.equal(checks, 1);
  t.equal(await dataDigest(world), before, 'the cache and keys are untouched');
});

t.test('a bundle with a bad signature is REJECTED and nothing is unpacked', async (t) => {
  const world = await JobsWorld.start(t);
  const root = await installation(world);
  const content = await bundle(world, '1.3.0');
  const artifact = world.artifact(content, { url: world.server.serve('c.tgz', content) });
  await world.emulator.addJob(
    'sw-forged',
    signedJob(job('1.3.0', artifact), signingKey().privateKey, thingName),
  );
  const { calls, handlers } = installer(root, () => ({ healthy: true }));
  t.equal((await world.window(handlers)).jobs[0]?.status, 'REJECTED');
  t.same(await readdir(join(root, 'releases')), ['1.0.0'], 'nothing was unpacked');
  t.equal(calls.restarts, 0);
});

t.test('an older release is refused unless its signed manifest says rollback', async (t) => {
  const world = await JobsWorld.start(t);
  const root = await installation(world);
  world.agentOptions = {
    runningVersion: async () => (await readlink(join(root, 'current'))).replace('releases/', ''),
  };
  const old = await bundle(world, '0.9.0');
  const url = world.server.serve('old.tgz', old);
  await world.addJob('sw-downgrade', job('0.9.0', world.artifact(old, { url })));
  const { calls, handlers } = installer(root, () => ({ healthy: true }));
  const refused = await world.window(handlers);
  t.equal(refused.jobs[0]?.status, 'REJECTED', 'a replayed old release is refused');
  t.match(
    refused.jobs[0]?.statusDetails.reason,
    /downgrade refused: 0\.9\.0 is older than the running 1\.0\.0/,
  );
  t.same(await readdir(join(root, 'releases')), ['1.0.0'], 'nothing was unpacked');
  t.equal(world.server.requests.length, 0, 'refused before a byte was downloaded');

  await world.addJob('sw-rollback', job('0.9.0', world.artifact(old, { url })), { rollback: true });
  const rolledBack = await world.window(handlers);
  t.equal(rolledBack.jobs[0]?.status, 'SUCCEEDED', 'signed as a rollback, it is installed');
  t.equal(await readlink(join(root, 'current')), 'releases/0.9.0');
  t.equal(calls.restarts, 1);
});

t.test('a gateway killed in the middle of applying recovers to a consistent version', async (t) => {
  const world = await JobsWorld.start(t);
  const root = await installation(world);
  const content = await bundle(world, '2.0.0');
  await world.addJob(
    'sw-kill',
    job('2.0.0', world.artifact(content, { url: world.server.serve('d.tgz', content) })),
  );
  const settings = {
    login: world.gateway,
    thingName,
    dataDir: world.dataDir,
    root,
    publicKeyPem: world.key.publicKeyPem,
    caPem: world.caPem.toString(),
  };
  const child = spawn(process.execPath, [...process.execArgv, childScript], {
    env: { ...process.env, ATTACHE_JOBS_CHILD: JSON.stringify(settings) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const [, signal] = await new Promise<[number | null, string | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  t.equal(signal, 'SIGKILL', 'the gateway died while applying');
  const state = JSON.parse(await readFile(join(world.dataDir, 'jobs', 'state.json'), 'utf8'));
  t.equal(state.jobs[0].phase, 'applying', 'with the job half applied');
  const current = await readlink(join(root, 'current'));
  t.equal(current, 'releases/2.0.0', 'current names a complete release');
  t.ok(await readFile(join(root, current, '.release.json')), 'marked complete');
  t.equal(world.emulator.executions.get('sw-kill')?.status, 'IN_PROGRESS');

  const { calls, handlers } = installer(root, () => ({ healthy: true }));
  const result = await world.window(handlers);
  t.equal(result.jobs[0]?.status, 'SUCCEEDED', 'the restarted gateway finishes the job');
  t.equal(await readlink(join(root, 'current')), 'releases/2.0.0');
  t.equal(
    await readlink(join(root, 'previous')),
    'releases/1.0.0',
    'previous still names the release to roll back to',
  );
  t.equal(calls.restarts, 0, 'not restarted again: it already runs from the new release');
  t.same(
    (await readdir(join(root, 'releases'))).sort(),
    ['1.0.0', '2.0.0'],
    'no half-unpacked directory is left',
  );
});

t.end();
