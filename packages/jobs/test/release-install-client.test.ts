// The service's side of asking the root release installer (askReleaseInstaller, and ReleaseInstaller
// with installerSocket), against servers on a real Unix socket; and the installer's entry point
// (release-install-main), run as a process with the connection as its stdin and stdout.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nullLogger } from '@attache/core';
import {
  type ApplyContext,
  askReleaseInstaller,
  ReleaseInstaller,
  ReleaseTrial,
  type SoftwareUpdateJob,
} from '@attache/jobs';
import t, { type Test } from 'tap';

const request = { jobId: 'sw-1', executionNumber: 1, manifest: '{}', signature: 'c2ln' };
const main = fileURLToPath(new URL('../dist/release-install-main.js', import.meta.url));

/** A short directory for sockets (a Unix socket's path must stay under 108 bytes). */
async function socketDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attache-ask-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A server on a new socket that reads the whole request, then does `answer` with it. */
async function installer(t: Test, answer: (socket: Socket, received: Buffer) => void): Promise<string> {
  const path = join(await socketDir(t), 'i.sock');
  const received: Buffer[] = [];
  // The client half-closes after the bundle; the answer may come later (as the installer's does).
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('end', () => answer(socket, Buffer.concat(received)));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return path;
}

t.test('the request line and the bundle go over; the answer comes back', async (t) => {
  let seen: Buffer = Buffer.alloc(0);
  const socket = await installer(t, (s, received) => {
    seen = received;
    s.end('{"ok":true,"version":"1.1.0","release":"releases/1.1.0","previous":"releases/1.0.0"}\n');
  });
  const answer = await askReleaseInstaller(socket, request, Buffer.from('BUNDLE'));
  t.same(answer, { ok: true, version: '1.1.0', release: 'releases/1.1.0', previous: 'releases/1.0.0' });
  t.equal(seen.toString(), `${JSON.stringify(request)}\nBUNDLE`);
});

t.test("a refusal is the job's REJECTED; a system failure is retried", async (t) => {
  const refusing = await installer(t, (s) =>
    s.end('{"ok":false,"code":"ATTACHE_UNSAFE_FILE","reason":"the release bundle holds a symlink"}\n'),
  );
  await t.rejects(askReleaseInstaller(refusing, request, Buffer.alloc(1)), {
    status: 'REJECTED',
    code: 'ATTACHE_UNSAFE_FILE',
    reason: 'the root installer refused the release: the release bundle holds a symlink',
  });
});

t.test('a failure of the system, no answer, no installer or no answer in time: retried', async (t) => {
  const failing = await installer(t, (s) =>
    s.end('{"ok":false,"code":"ATTACHE_INTERNAL","reason":"ENOSPC","retry":true}\n'),
  );
  await t.rejects(askReleaseInstaller(failing, request, Buffer.alloc(1)), {
    code: 'ATTACHE_JOBS_UNAVAILABLE',
    message: /did not install the release: ENOSPC/,
  });
  const dir = await socketDir(t);
  const silent = join(dir, 'silent.sock');
  const server = createServer((s) => s.resume().on('end', () => s.end()));
  await new Promise<void>((resolve) => server.listen(silent, resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  await t.rejects(askReleaseInstaller(silent, request, Buffer.alloc(1)), {
    code: 'ATTACHE_JOBS_UNAVAILABLE',
    message: /closed the connection without an answer/,
  });
  await t.rejects(askReleaseInstaller(join(dir, 'none.sock'), request, Buffer.alloc(1)), {
    code: 'ATTACHE_JOBS_UNAVAILABLE',
    message: /ENOENT/,
  });
  const slow = join(dir, 'slow.sock');
  const held: Socket[] = [];
  const hanging = createServer((s) => held.push(s));
  await new Promise<void>((resolve) => hanging.listen(slow, resolve));
  t.teardown(() => {
    for (const s of held) s.destroy();
    return new Promise((resolve) => hanging.close(resolve));
  });
  await t.rejects(askReleaseInstaller(slow, request, Buffer.alloc(1), 50), {
    code: 'ATTACHE_JOBS_UNAVAILABLE',
    message: /no answer within 50 ms/,
  });
});

function context(version: string): ApplyContext<SoftwareUpdateJob> {
  return {
    jobId: 'sw-2',
    executionNumber: 1,
    document: {
      schemaVersion: 2,
      operation: 'software-update',
      version,
      artifact: { content: '', sha256: '0'.repeat(64), size: 0 },
      manifest: '{"m":1}',
      signature: 'c2ln',
    },
    content: Buffer.from('BUNDLE'),
    resumed: false,
    signal: new AbortController().signal,
    log: nullLogger,
  };
}

t.test('the service with an installer socket: asks, never unpacks, never prunes', async (t) => {
  const dir = t.testdir({ jobs: {}, root: { releases: { '1.0.0': {}, '0.9.0': {} } } });
  const root = join(dir, 'root');
  await symlink('releases/1.0.0', join(root, 'current'));
  let asked = '';
  const socket = await installer(t, (s, received) => {
    asked = received.toString();
    // What the root installer does: the switch (here by hand).
    symlink('releases/1.1.0', join(root, 'next'))
      .then(() => rename(join(root, 'next'), join(root, 'current')))
      .then(() => s.end('{"ok":true,"version":"1.1.0","release":"releases/1.1.0"}\n'));
  });
  const trial = new ReleaseTrial({ file: join(dir, 'jobs', 'release-trial'), root });
  let restarts = 0;
  const service = new ReleaseInstaller({
    root,
    restart: async () => {
      restarts++;
    },
    trial,
    installerSocket: socket,
  });
  await t.rejects(service.apply(context('1.1.0')), { code: 'ATTACHE_CANCELED' });
  t.equal(
    asked,
    `${JSON.stringify({ jobId: 'sw-2', executionNumber: 1, manifest: '{"m":1}', signature: 'c2ln' })}\nBUNDLE`,
  );
  t.equal(restarts, 1);
  t.match(await trial.read(), { state: 'trial', release: 'releases/1.1.0', previous: 'releases/1.0.0' });
  t.equal(await readlink(join(root, 'current')), 'releases/1.1.0');
  const record = await trial.read();
  await trial.markHealthy(record as never);
  t.same(
    await service.apply(context('1.1.0')),
    { version: '1.1.0' },
    'SUCCEEDED, nothing pruned by the service',
  );
  t.throws(
    () =>
      new ReleaseInstaller({
        root,
        restart: async () => undefined,
        healthCheck: async () => ({ healthy: true }),
        installerSocket: socket,
      }),
    { message: /"installerSocket" needs a "trial"/ },
  );
});

/** Runs the installer's entry point with `input` on stdin; its answer line and stderr. */
function runMain(
  args: string[],
  input: string,
): Promise<{ answer: Record<string, unknown>; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [main, ...args], (err, stdout, stderr) => {
      resolve({ answer: JSON.parse(stdout || '{}'), stderr, code: err ? Number(err.code) : 0 });
    });
    child.stdin?.end(input);
  });
}

t.test('the entry point: refuses without its own key and record, answers on stdout', async (t) => {
  const dir = t.testdir({ trust: {}, root: { releases: {} }, store: {} });
  await chmod(dir, 0o755);
  await chmod(join(dir, 'trust'), 0o755);
  const key = join(dir, 'trust', 'jobs-signing.pem');
  const record = join(dir, 'trust', 'provisioning.json');
  const args = [
    `--root=${join(dir, 'root')}`,
    `--store=${join(dir, 'store')}`,
    `--key=${key}`,
    `--provisioning=${record}`,
  ];
  const missing = await runMain(args, '');
  t.equal(missing.code, 1);
  t.match(missing.answer, { ok: false, code: 'ATTACHE_JOB_REFUSED', reason: /no software update without/ });
  t.match(missing.stderr, /^attache-release-install: no software update without/);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await writeFile(key, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  await writeFile(record, '{"state":"failed","gatewayId":null}', { mode: 0o644 });
  t.match((await runMain(args, '')).answer, { ok: false, reason: /names no gateway/ });
  await writeFile(record, '{"gatewayId":"gw-1","thingGroups":["ward4",7]}', { mode: 0o644 });
  const asked = await runMain(args, `${JSON.stringify(request)}\n`);
  t.match(asked.answer, { ok: false, code: 'ATTACHE_SIGNATURE' }, 'the request is checked against the key');
  t.match(asked.stderr, /refused: bad signature/);
});
