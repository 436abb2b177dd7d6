// Software updates applied by the running service: `attache run` (started from `current` of an
// install root laid out like the image's /opt/attache) has the root release installer install the
// release a job delivers and switch to it, and exits 75; the test restarts it as systemd would (the
// rollback guard first). A healthy release marks itself healthy and the job SUCCEEDED in the next
// window.
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { releaseWorld } from './helpers/jobs-service.js';
import { exitRestart } from './helpers/jobs-supervisor.js';

// The emulator's AWS CRT client can hold the event loop: exit once tap is done.
t.on('complete', () => setImmediate(() => process.exit()));

t.test(
  'a release that starts healthy: switched, restarted onto it, SUCCEEDED in the next window',
  async (t) => {
    const { stack, root, store, supervisor, first, execution } = await releaseWorld(t, '1.1.0', 'working');
    t.equal(first.release, 'releases/1.0.0', 'the gateway runs release 1.0.0');
    await stack.run('sync', '--json');
    t.equal(await first.exited, exitRestart, 'the gateway ended after the window with the restart status');
    t.equal(execution()?.status, 'IN_PROGRESS', 'the job waits for the restart');
    const handedOutAt = execution()?.handedOutAt ?? 0;
    t.match(execution()?.updates.at(-1)?.statusDetails.interrupted, /restarting onto release 1\.1\.0/);
    t.equal(await readlink(join(root, 'current')), 'releases/1.1.0', 'current names the new release');
    t.equal(await readlink(join(root, 'previous')), 'releases/1.0.0', 'previous the old one');
    t.equal(
      await readlink(join(root, 'releases', '1.1.0')),
      join(store, '1.1.0'),
      'installed by the root installer, in its store, linked from the install root',
    );
    t.match(await readFile(join(store, '1.1.0', '.release.json'), 'utf8'), /"version":"1.1.0"/);

    const second = await supervisor.waitForLog((l) => l.msg === 'new release runs healthy', 1);
    t.equal(second.release, 'releases/1.1.0', 'the supervisor started the new release');
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0, sync.stderr);
    t.equal(execution()?.status, 'SUCCEEDED', 'the next window reports SUCCEEDED');
    t.equal(execution()?.statusDetails.version, '1.1.0');
    const succeededAt = execution()?.updates.at(-1)?.at ?? 0;
    t.comment(
      `software update, measured: first hand-out to SUCCEEDED ${succeededAt - handedOutAt} ms ` +
        '(download, unpack, switch, clean stop, restart, health, and the next window opened at once)',
    );
    t.equal(second.child.exitCode, null, 'and the new release keeps running');
    const trial = await readFile(join(stack.dir, 'data', 'jobs', 'release-trial'), 'utf8');
    t.match(trial, /^state=healthy$/m, 'the trial marker says healthy');
    t.match(trial, /^attempts=1$/m, 'after one start');
    t.equal(supervisor.starts.length, 2, 'two starts in all');
  },
);

t.end();
