// A software update whose release cannot even start, applied by the running service: after the
// switch and the restart (the test plays systemd), the rollback guard counts three failed starts,
// points `current` back at the previous release, and the job reports FAILED in the next window.
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { releaseWorld } from './helpers/jobs-service.js';
import { exitRestart } from './helpers/jobs-supervisor.js';

// The emulator's AWS CRT client can hold the event loop: exit once tap is done.
t.on('complete', () => setImmediate(() => process.exit()));

t.test('a release that cannot start is rolled back by the guard and the job FAILED', async (t) => {
  const { stack, root, supervisor, first, execution } = await releaseWorld(t, '1.2.0', 'broken');
  t.equal(first.release, 'releases/1.0.0', 'the gateway runs release 1.0.0');
  await stack.run('sync', '--json');
  t.equal(await first.exited, exitRestart);
  const back = await supervisor.waitForLog((l) => l.msg === 'gateway started', 1);
  t.same(
    supervisor.starts.map((s) => s.release),
    ['releases/1.0.0', 'releases/1.2.0', 'releases/1.2.0', 'releases/1.2.0', 'releases/1.0.0'],
    'three failed starts of 1.2.0, then 1.0.0 again',
  );
  t.same(
    await Promise.all(supervisor.starts.slice(1, 4).map((s) => s.exited)),
    [1, 1, 1],
    'each start of 1.2.0 exited 1',
  );
  t.match(
    supervisor.guardOutput.at(-2),
    /release 1\.2\.0 failed to start 3 times; rolled back to releases\/1\.0\.0/,
    'the guard marked the trial rolled back',
  );
  t.match(
    supervisor.guardOutput.at(-1),
    /releases\/1\.2\.0 was rolled back: current is releases\/1\.0\.0 again/,
    'and the switch back (root on the box) switched current',
  );
  t.equal(await readlink(join(root, 'current')), 'releases/1.0.0', 'current names the old release again');

  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, sync.stderr);
  t.equal(execution()?.status, 'FAILED', 'the next window reports FAILED');
  t.equal(
    execution()?.statusDetails.reason,
    'release 1.2.0 failed to start 3 times; rolled back to releases/1.0.0',
  );
  t.equal(back.child.exitCode, null, 'the old release keeps running');
});

t.end();
