// The `network` window policy (uplink.window.onNetworkUp) with the real route probe (`ip route get`):
// the gateway runs in its own network namespace (unprivileged: `unshare -rn`, no root needed) whose
// loopback is down, so it has no route to its endpoint (localhost) until the test brings `lo` up.
// The broker stays in the test's namespace; a socat relay pair joins the two through a Unix socket.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { recordsOf, Stack } from './helpers/stack.js';

const run = promisify(execFile);
const namespacesWork = spawnSync('unshare', ['-rn', 'true']).status === 0;

function track(t: { teardown(fn: () => unknown): void }, child: ChildProcess): ChildProcess {
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** Waits (30 s at most) until `done` holds. */
async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A directory with an `ip` that notes each call in `<dir>/calls`, then runs the real one. */
async function countedIp(dir: string): Promise<{ dir: string; calls: () => Promise<number> }> {
  await mkdir(dir, { recursive: true });
  const calls = join(dir, 'calls');
  await writeFile(join(dir, 'ip'), `#!/bin/sh\necho "$*" >> '${calls}'\nexec /usr/sbin/ip "$@"\n`);
  await chmod(join(dir, 'ip'), 0o755);
  const count = async () => (await readFile(calls, 'utf8').catch(() => '')).split('\n').length - 1;
  return { dir, calls: count };
}

t.test(
  'the network policy opens a window by itself when a route to the endpoint appears, and not before',
  { skip: namespacesWork ? false : 'unprivileged user and network namespaces (unshare -rn) unavailable' },
  async (t) => {
    const stack = await Stack.start(t, {
      uplink: { window: { onNetworkUp: true, networkPollSeconds: 1 } },
    });
    const sock = join(stack.dir, 'broker.sock');
    track(t, spawn('socat', [`UNIX-LISTEN:${sock},fork`, `TCP4:127.0.0.1:${stack.broker.port}`]));
    // The namespace lives as long as this process; everything else joins it with nsenter.
    const holder = track(t, spawn('unshare', ['-rn', 'sleep', 'infinity'], { stdio: 'ignore' }));
    const enter = ['nsenter', '-t', String(holder.pid), '-U', '-n', '--preserve-credentials'];
    const ours = await readlink('/proc/self/ns/net');
    await until('the namespace', async () => (await readlink(`/proc/${holder.pid}/ns/net`)) !== ours);
    // Binding 127.0.0.1 works while lo is down; connections can only arrive once it is up.
    const inner = [`TCP4-LISTEN:${stack.broker.port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`];
    track(t, spawn(enter[0] as string, [...enter.slice(1), 'socat', ...inner]));
    const route = () => run(enter[0] as string, [...enter.slice(1), 'ip', 'route', 'get', '127.0.0.1']);
    await t.rejects(route(), 'no route to the endpoint inside the namespace yet');

    const received = await stack.subscribe();
    const ip = await countedIp(join(stack.dir, 'ip'));
    const gateway = stack.startGateway([...enter, 'env', `PATH=${ip.dir}:${process.env.PATH ?? ''}`]);
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    for (let i = 0; i < 3; i++) await stack.device.sendReading();
    await stack.statusUntil((s) => s.backlog.records === 3);
    // Several route checks (1 s apart) without a route: no window may open. The fourth one starts
    // once the first three answered.
    const checksBefore = await ip.calls();
    await until('three more route checks', async () => (await ip.calls()) >= checksBefore + 4);
    const before = await stack.statusUntil(() => true);
    t.equal(before.lastWindow, null, 'no window while there is no route');
    t.equal(before.backlog.records, 3, 'the records wait');
    t.notOk(
      gateway.logs.some((l) => l.msg === 'window opened' || l.msg === 'route to the endpoint appeared'),
      'no window opened before the route appeared',
    );
    t.equal(received.messages.length, 0, 'nothing reached the broker');

    await run(enter[0] as string, [...enter.slice(1), 'ip', 'link', 'set', 'lo', 'up']);
    await gateway.waitForLog((l) => l.msg === 'route to the endpoint appeared');
    const after = await stack.statusUntil((s) => s.lastWindow !== null, 60_000);
    t.match(after.lastWindow, { outcome: 'drained', records: 3, trigger: 'network' });
    await received.waitFor(1, 30_000);
    t.same(
      recordsOf(received.messages).map((r) => r.seq),
      [1, 2, 3],
      'the waiting records reached the broker',
    );
  },
);
