import { execFile, spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  createTestPki,
  getFreePort,
  isListening,
  startMosquitto,
  subscribeTopic,
  type TestPki,
} from '@attache/devkit';
import t from 'tap';

const run = promisify(execFile);

async function waitClosed(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isListening(port))) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function publish(port: number, pki: TestPki, message: string, withCert = true): Promise<unknown> {
  const cert = withCert ? ['--cert', pki.clientCertFile, '--key', pki.clientKeyFile] : [];
  return run('mosquitto_pub', [
    '-h',
    'localhost',
    '-p',
    String(port),
    '--cafile',
    pki.caFile,
    ...cert,
    '-q',
    '1',
    '-t',
    // The gateway certificate may publish only on its own thing's topics (the broker's ACL).
    'dt/attache/gw-devkit/telemetry',
    '-m',
    message,
  ]);
}

const dir = t.testdir();
const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-devkit' });

t.test('getFreePort gives a port that can be bound', async (t) => {
  const port = await getFreePort();
  t.ok(port > 0 && port < 65536);
  const server = createServer();
  await new Promise<void>((resolve, reject) =>
    server.once('error', reject).listen(port, '127.0.0.1', resolve),
  );
  await new Promise((resolve) => server.close(resolve));
});

t.test('createTestPki makes a CA, a server cert for localhost and client certs it signed', async (t) => {
  for (const key of [pki.serverKeyFile, pki.clientKeyFile, pki.subscriberKeyFile]) {
    t.equal((await stat(key)).mode & 0o777, 0o600, `${key} is private`);
  }
  const server = await run('openssl', [
    'x509',
    '-in',
    pki.serverCertFile,
    '-noout',
    '-ext',
    'subjectAltName',
  ]);
  t.match(server.stdout, /DNS:localhost/);
  t.match(server.stdout, /IP Address:127\.0\.0\.1/);
  const client = await run('openssl', ['x509', '-in', pki.clientCertFile, '-noout', '-subject']);
  t.match(client.stdout, /CN ?= ?gw-devkit/);
  const subscriber = await run('openssl', ['x509', '-in', pki.subscriberCertFile, '-noout', '-subject']);
  t.match(subscriber.stdout, /CN ?= ?dashboard/);
  const verified = await run('openssl', [
    'verify',
    '-CAfile',
    pki.caFile,
    pki.serverCertFile,
    pki.clientCertFile,
    pki.subscriberCertFile,
  ]);
  t.equal(verified.stdout.match(/: OK/g)?.length, 3);
});

t.test('createTestPki reuses a complete PKI', async (t) => {
  const before = await readFile(pki.clientCertFile, 'utf8');
  const again = await createTestPki(pki.dir, { thingName: 'gw-devkit' });
  t.same(again, pki);
  t.equal(await readFile(again.clientCertFile, 'utf8'), before);
  await t.rejects(createTestPki(dir, { thingName: 'has space' }), TypeError);
});

t.test('mosquitto requires a client certificate and delivers payloads whole', async (t) => {
  const broker = await startMosquitto({ dir, pki });
  t.teardown(broker.stop);
  const sub = await subscribeTopic({ broker, pki, topic: 'dt/#' });
  t.teardown(sub.stop);

  await t.rejects(publish(broker.port, pki, 'anonymous', false), 'no certificate, no access');
  await publish(broker.port, pki, 'line one\nline two');
  t.same((await sub.waitFor(1, 30_000)).map(String), ['line one\nline two']);
  await t.rejects(sub.waitFor(2, 200), 'waitFor rejects when too few arrive');
});

t.test('kill stops the broker at once; restart brings it back on the same port', async (t) => {
  const port = await getFreePort();
  const broker = await startMosquitto({ dir, pki, port });
  t.teardown(broker.stop);
  t.equal(broker.port, port);
  await broker.kill();
  t.equal(await isListening(port), false, 'nothing listens after kill');
  await broker.restart();
  t.equal(await isListening(port), true, 'listening again');
  const sub = await subscribeTopic({ broker, pki, topic: 'dt/#' });
  t.teardown(sub.stop);
  await publish(port, pki, 'after restart');
  t.same((await sub.waitFor(1, 30_000)).map(String), ['after restart']);
  await broker.stop();
  t.equal(await isListening(port), false, 'nothing listens after stop');
});

t.test('a broker does not outlive the process that started it', async (t) => {
  const port = await getFreePort();
  const script = `
    import { createTestPki, startMosquitto } from '@attache/devkit';
    const pki = await createTestPki(${JSON.stringify(pki.dir)}, { thingName: 'gw-devkit' });
    await startMosquitto({ dir: ${JSON.stringify(dir)}, pki, port: Number(process.argv[1]) });
    process.stdout.write('up\\n');
    process.stdin.once('data', () => process.exit(0));
  `;
  for (const mode of ['exit', 'kill']) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(port)], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    t.equal(await isListening(port), true, `${mode}: broker up`);
    if (mode === 'kill') child.kill('SIGKILL');
    else child.stdin.write('exit\n');
    await new Promise((resolve) => child.once('exit', resolve));
    t.equal(
      await waitClosed(port, 30_000),
      true,
      `${mode}: broker gone after the parent ${mode === 'kill' ? 'was killed' : 'exited'}`,
    );
  }
});
