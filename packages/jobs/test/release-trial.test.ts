import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nullLogger } from '@attache/core';
import { type ApplyContext, ReleaseInstaller, ReleaseTrial, type SoftwareUpdateJob } from '@attache/jobs';
import t, { type Test } from 'tap';

const artifact = { content: '', sha256: '0'.repeat(64), size: 0 };

function context(version: string, content: Buffer, jobId = 'sw-1'): ApplyContext<SoftwareUpdateJob> {
  return {
    jobId,
    executionNumber: 1,
    document: {
      schemaVersion: 2,
      operation: 'software-update',
      version,
      artifact,
      manifest: '{}',
      signature: 'x',
    },
    content,
    resumed: false,
    signal: new AbortController().signal,
    log: nullLogger,
  };
}

/** An install root running 1.0.0, a bundle of `version`, and the service's installer over them. */
async function service(t: Test) {
  const dir = t.testdir({ jobs: {}, root: { releases: { '1.0.0': { '.release.json': '{}' } } }, tree: {} });
  const root = join(dir, 'root');
  await symlink('releases/1.0.0', join(root, 'current'));
  await writeFile(join(dir, 'tree', 'bin.js'), 'process.exit(0)\n');
  execFileSync('tar', ['-czf', join(dir, 'b.tgz'), '-C', join(dir, 'tree'), '.']);
  const bundle = await readFile(join(dir, 'b.tgz'));
  const trial = new ReleaseTrial({ file: join(dir, 'jobs', 'release-trial'), root });
  const calls = { restarts: 0 };
  const installer = new ReleaseInstaller({
    root,
    restart: async () => {
      calls.restarts++;
    },
    trial,
  });
  return { dir, root, bundle, trial, calls, installer };
}

t.test('the service installs, writes the trial, switches and asks for a restart', async (t) => {
  const { root, bundle, trial, calls, installer } = await service(t);
  await t.rejects(installer.apply(context('1.1.0', bundle)), {
    code: 'ATTACHE_CANCELED',
    message: /restarting onto release 1\.1\.0/,
  });
  t.equal(calls.restarts, 1, 'the restart was requested');
  t.equal(await readlink(join(root, 'current')), 'releases/1.1.0');
  t.equal(await readlink(join(root, 'previous')), 'releases/1.0.0');
  const record = await trial.read();
  t.same(record, {
    state: 'trial',
    jobId: 'sw-1',
    executionNumber: 1,
    version: '1.1.0',
    release: 'releases/1.1.0',
    previous: 'releases/1.0.0',
    attempts: 0,
  });
  t.same(await trial.pending(), record, 'current names it: this start would be its trial');

  await t.rejects(installer.apply(context('1.1.0', bundle)), { code: 'ATTACHE_CANCELED' });
  t.equal(calls.restarts, 2, 'resumed before the new release confirmed itself: restart requested again');

  await trial.markHealthy(record as never);
  t.same(await installer.apply(context('1.1.0', bundle)), { version: '1.1.0' }, 'healthy: SUCCEEDED');
  t.equal(await trial.pending(), undefined, 'no trial is pending any more');
  t.equal(calls.restarts, 2);
  t.same(
    await installer.apply(context('1.1.0', bundle, 'sw-again')),
    { version: '1.1.0', note: 'already running' },
    'another job for the running version changes nothing',
  );
});

t.test('once a new release runs healthy, releases older than the previous one are removed', async (t) => {
  const { root, bundle, trial, installer } = await service(t);
  await mkdir(join(root, 'releases', '0.9.0'));
  await writeFile(join(root, 'releases', '0.9.0', '.release.json'), '{}');
  await t.rejects(installer.apply(context('1.1.0', bundle)), { code: 'ATTACHE_CANCELED' });
  t.same(
    (await readdir(join(root, 'releases'))).sort(),
    ['0.9.0', '1.0.0', '1.1.0'],
    'nothing is removed while the new release is on trial',
  );
  await trial.markHealthy((await trial.read()) as never);
  t.same(await installer.apply(context('1.1.0', bundle)), { version: '1.1.0', pruned: 'releases/0.9.0' });
  t.same((await readdir(join(root, 'releases'))).sort(), ['1.0.0', '1.1.0'], 'current and previous stay');
  t.equal(await readlink(join(root, 'previous')), 'releases/1.0.0', 'the rollback target is kept');
});

t.test('a trial rolled back makes the job FAILED with the reason, without a new switch', async (t) => {
  const { root, bundle, trial, calls, installer } = await service(t);
  await t.rejects(installer.apply(context('1.2.0', bundle)), { code: 'ATTACHE_CANCELED' });
  const record = await trial.read();
  await trial.rollBack(record as never, 'release 1.2.0 unhealthy: boom\nsecond line; rolled back');
  t.equal(
    await readlink(join(root, 'current')),
    'releases/1.2.0',
    "only the marker: the switch back is the install root owner's, before the next start",
  );
  t.equal(await trial.pending(), undefined, 'no longer a trial');
  await t.rejects(installer.apply(context('1.2.0', bundle)), {
    status: 'FAILED',
    message: 'release 1.2.0 unhealthy: boom second line; rolled back',
  });
  t.equal(await readlink(join(root, 'current')), 'releases/1.2.0', 'not switched by the service');
  t.equal(calls.restarts, 1);
});

t.test('options and a damaged marker', async (t) => {
  const { dir, root, bundle } = await service(t);
  const bare = new ReleaseInstaller({
    root: join(dir, 'bare'),
    restart: async () => undefined,
    trial: new ReleaseTrial({ file: join(dir, 'jobs', 'bare-trial'), root: join(dir, 'bare') }),
  });
  await t.rejects(bare.apply(context('1.0.0', bundle)), {
    status: 'FAILED',
    message: /no release is running/,
  });
  t.throws(() => new ReleaseInstaller({ root, restart: async () => undefined }), TypeError);
  t.throws(() => new ReleaseTrial({ file: '', root }), TypeError);
  t.throws(() => new ReleaseTrial({ file: 'x', root: '' }), TypeError);
  const file = join(dir, 'jobs', 'damaged');
  await writeFile(file, 'state=maybe\n');
  await t.rejects(new ReleaseTrial({ file, root }).read(), { code: 'ATTACHE_MALFORMED' });
  await mkdir(join(dir, 'jobs', 'dir'));
  await t.rejects(new ReleaseTrial({ file: join(dir, 'jobs', 'dir'), root }).read(), { code: 'EISDIR' });
  t.equal(new ReleaseTrial({ file, root }).root, root);
});
