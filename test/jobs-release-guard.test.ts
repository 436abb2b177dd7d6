// The rollback guard of software updates (image-build/overlay/usr/local/lib/attache/
// attache-release-guard) and the switch back (attache-release-switch-back), run directly as
// attache.service runs them before every start: the guard counts the starts of a release on trial
// and marks it rolled back after three that did not make it healthy, the switch back then points
// `current` at `previous`. And a new release whose gateway fails to start rolls itself back at once.
// (test/release-install.test.ts runs the switch back as root against a service user's marker.)
import { execFile, spawn } from 'node:child_process';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { profileFormat } from '@attache/devkit';
import { ReleaseTrial, type TrialRecord } from '@attache/jobs';
import t, { type Test } from 'tap';
import {
  beforeStart,
  exitRestart,
  guardScript,
  installRoot,
  ReleaseSupervisor,
  releaseTree,
  switchBackScript,
} from './helpers/jobs-supervisor.js';

const run = promisify(execFile);

/** An install root running 1.0.0, with release `version` (`kind`) installed and switched to, on trial. */
async function onTrial(t: Test, version: string, kind: 'working' | 'broken', shim?: string) {
  // Not t.testdir(): the control socket's path must stay under the 108 bytes of a unix socket address.
  const dir = await mkdtemp(join(tmpdir(), 'attache-guard-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'data', 'jobs'), { recursive: true });
  const root = await installRoot(dir, '1.0.0');
  const tree = await releaseTree(dir, version, kind);
  if (shim) await writeFile(join(tree, 'packages', 'cli', 'dist', 'bin.js'), shim);
  await run('cp', ['-r', tree, join(root, 'releases', version)]);
  await symlink('releases/1.0.0', join(root, 'previous'));
  await run('ln', ['-sfn', `releases/${version}`, join(root, 'current')]);
  const file = join(dir, 'data', 'jobs', 'release-trial');
  const trial = new ReleaseTrial({ file, root });
  const record: TrialRecord = {
    state: 'trial',
    jobId: 'sw-9',
    executionNumber: 1,
    version,
    release: `releases/${version}`,
    previous: 'releases/1.0.0',
    attempts: 0,
  };
  await trial.write(record);
  return { dir, root, file, trial, record };
}

/** The unit's two steps before a start: their output lines. */
const guard = async (root: string, file: string) => ({ stdout: (await beforeStart(root, file)).join('\n') });

/** `node <root>/current/packages/cli/dist/bin.js`: its exit code. */
function startCurrent(root: string): Promise<number | null> {
  const child = spawn(process.execPath, [join(root, 'current', 'packages', 'cli', 'dist', 'bin.js')], {
    stdio: 'ignore',
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

t.test('shellcheck: the guard and the switch back are clean', async (t) => {
  const result = await run('shellcheck', ['-x', guardScript, switchBackScript]).then(
    () => ({ code: 0, output: '' }),
    (err: { code: number; stdout: string }) => ({ code: err.code, output: err.stdout }),
  );
  t.equal(result.code, 0, result.output || 'no findings');
});

t.test('a release that exits 1 is rolled back after three starts', async (t) => {
  const { root, file, trial } = await onTrial(t, '1.2.0', 'broken');
  for (let start = 1; start <= 3; start++) {
    const { stdout } = await guard(root, file);
    t.equal(stdout.trim(), `attache-release-guard: start ${start} of 3 of release 1.2.0 on trial`);
    t.equal((await trial.read())?.attempts, start, `start ${start} is counted`);
    t.equal(await startCurrent(root), 1, 'the release exits 1');
  }
  const { stdout } = await guard(root, file);
  t.match(stdout, /release 1\.2\.0 failed to start 3 times; rolled back to releases\/1\.0\.0/);
  t.match(
    stdout,
    /attache-release-switch-back: releases\/1\.2\.0 was rolled back: current is releases\/1\.0\.0 again/,
  );
  t.equal(await readlink(join(root, 'current')), 'releases/1.0.0', 'current names the previous release');
  const record = await trial.read();
  t.equal(record?.state, 'rolled-back');
  t.equal(record?.reason, 'release 1.2.0 failed to start 3 times; rolled back to releases/1.0.0');
  t.equal(record?.jobId, 'sw-9', 'the job is still named, for the next window to report');
  t.same((await readdir(root)).sort(), ['current', 'previous', 'releases'], 'no temporary link is left');
  t.same(await readdir(join(file, '..')), ['release-trial'], 'no temporary marker is left');

  const again = await guard(root, file);
  t.equal(again.stdout, '', 'once rolled back, later starts are left alone');
  t.equal(await readlink(join(root, 'current')), 'releases/1.0.0');
});

t.test("the image's release, a symlink in releases/ as on the box, is rolled back to", async (t) => {
  const { dir, root, file, trial } = await onTrial(t, '1.2.0', 'broken');
  // customize.sh installs the image's release outside /opt/attache and leaves a symlink in its place.
  const image = join(dir, 'usr-local-lib-attache', '1.0.0');
  await mkdir(join(dir, 'usr-local-lib-attache'));
  await rename(join(root, 'releases', '1.0.0'), image);
  await symlink(image, join(root, 'releases', '1.0.0'));
  for (let start = 1; start <= 3; start++) await guard(root, file);
  const { stdout } = await guard(root, file);
  t.match(stdout, /rolled back to releases\/1\.0\.0/, 'rolled back');
  t.equal((await trial.read())?.state, 'rolled-back');
  t.equal(await realpath(join(root, 'current')), image, 'current leads to the image release');
});

t.test('the guard leaves every start alone that is no trial', async (t) => {
  const { root, file, trial, record } = await onTrial(t, '1.4.0', 'working');
  await trial.write({ ...record, state: 'healthy', attempts: 1 });
  t.equal((await guard(root, file)).stdout, '', 'a healthy release');
  t.equal((await trial.read())?.attempts, 1, 'is not counted');

  await trial.write({ ...record, release: 'releases/9.9.9' });
  t.equal((await guard(root, file)).stdout, '', 'a trial of another release than current');
  t.equal((await trial.read())?.attempts, 0, 'is not counted');

  t.equal((await guard(root, join(file, '..', 'missing'))).stdout, '', 'no marker: nothing to do');
  t.equal(await readlink(join(root, 'current')), 'releases/1.4.0', 'current is untouched');
});

t.test('a new release whose gateway fails to start rolls itself back and asks for a restart', async (t) => {
  // The release starts, but its gateway cannot (here: no socket can listen).
  const shim = [
    "import net from 'node:net';",
    "net.Server.prototype.listen = function () { throw new Error('listen is broken in 1.3.0'); };",
    await readFile(
      join(await releaseTree(t.testdir(), 'x', 'working'), 'packages', 'cli', 'dist', 'bin.js'),
      'utf8',
    ),
  ].join('\n');
  const { dir, root, file, trial } = await onTrial(t, '1.3.0', 'working', shim);
  const configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-guard-1', dataDir: join(dir, 'data') },
      devices: [
        {
          id: 'spo2-bed7',
          adapter: 'rs232',
          port: { path: join(dir, 'no-tty') },
          format: profileFormat('nonin'),
        },
      ],
    }),
  );
  const supervisor = new ReleaseSupervisor({ root, trialFile: file, configPath });
  t.teardown(() => supervisor.stop());
  supervisor.start();
  const back = await supervisor.waitForLog((l) => l.msg === 'gateway started', 1);
  t.equal(await supervisor.starts[0]?.exited, exitRestart, 'the new release exited with the restart status');
  t.same(
    supervisor.starts.map((s) => s.release),
    ['releases/1.3.0', 'releases/1.0.0'],
    'one start of 1.3.0, then the previous release',
  );
  t.equal(back.child.exitCode, null, 'which runs');
  const record = await trial.read();
  t.equal(record?.state, 'rolled-back');
  t.match(
    record?.reason,
    /^release 1\.3\.0 unhealthy: listen is broken in 1\.3\.0; rolled back to releases\/1\.0\.0$/,
  );
});

t.test('a new release that refuses the config exits 1 on trial, so the guard counts it', async (t) => {
  const { dir, root, file, trial } = await onTrial(t, '1.5.0', 'working');
  // What a newer schema might refuse; the same file with no trial pending exits 78 as always.
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({ version: 1, gateway: { id: 'gw-guard-2' } }));
  const start = (env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [join(root, 'current', 'packages', 'cli', 'dist', 'bin.js'), 'run', '--config', configPath],
        { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk;
      });
      child.once('exit', (code) => resolve({ code, stderr }));
    });
  const onTrialEnv = { ATTACHE_INSTALL_ROOT: root, ATTACHE_RELEASE_TRIAL: file };
  const refused = await start(onTrialEnv);
  t.equal(refused.code, 1, 'exit 1: restarted by the unit, not left stopped');
  t.match(refused.stderr, /config .* is invalid:\n {2}\/devices: is required/, 'the problem is printed');
  for (let n = 1; n <= 3; n++) await guard(root, file);
  await guard(root, file);
  t.equal(await readlink(join(root, 'current')), 'releases/1.0.0', 'three such starts: rolled back');
  t.equal((await trial.read())?.state, 'rolled-back');
  t.equal((await start(onTrialEnv)).code, 78, 'no trial pending any more: 78 as for any invalid config');
  t.equal((await start({ ATTACHE_INSTALL_ROOT: root })).code, 78, 'without the trial marker named: 78');
});
