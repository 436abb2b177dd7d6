import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayError, nullLogger } from '@attache/core';
import t, { type Test } from 'tap';
import { ControlServer, controlRequest } from '../src/control.js';

// A Unix socket path must stay under 108 bytes: tap's fixture dirs are longer, so use a short temp dir.
async function socketPath(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attache-ctl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'attache.sock');
}

t.test('a request reaches the handler and its answer comes back', async (t) => {
  const path = await socketPath(t);
  const server = new ControlServer({
    path,
    logger: nullLogger,
    handler: async (method) => {
      if (method === 'status') return { backlog: 3 };
      if (method === 'slow') return new Promise(() => {});
      throw new GatewayError('ATTACHE_WINDOW_BUSY', 'a window is open');
    },
  });
  await server.start();
  t.teardown(() => server.stop());
  t.equal((await stat(path)).mode & 0o777, 0o600, 'only the owner may talk to the gateway');
  t.same(await controlRequest(path, 'status', 2000), { backlog: 3 });
  await t.rejects(controlRequest(path, 'sync', 2000), {
    code: 'ATTACHE_WINDOW_BUSY',
    message: 'a window is open',
  });
  await t.rejects(controlRequest(path, 'slow', 200), { code: 'ATTACHE_TIMEOUT' });
});

t.test('an unexpected handler error is answered as ATTACHE_INTERNAL', async (t) => {
  const path = await socketPath(t);
  const server = new ControlServer({
    path,
    logger: nullLogger,
    handler: () => Promise.reject(new TypeError('boom')),
  });
  await server.start();
  t.teardown(() => server.stop());
  await t.rejects(controlRequest(path, 'x', 2000), { code: 'ATTACHE_INTERNAL', message: 'boom' });
});

t.test('a data dir too deep for a Unix socket is a config problem, said plainly', async (t) => {
  const server = new ControlServer({
    path: `/tmp/${'d'.repeat(120)}/attache.sock`,
    logger: nullLogger,
    handler: async () => 1,
  });
  await t.rejects(server.start(), { code: 'ATTACHE_CONFIG_INVALID', issues: [{ path: '/gateway/dataDir' }] });
});

t.test('with no gateway running the client says so', async (t) => {
  const path = await socketPath(t);
  await t.rejects(controlRequest(path, 'status', 2000), { code: 'ATTACHE_CONTROL_UNAVAILABLE' });
});

t.test('a stale socket file from a crashed gateway is replaced; stop removes the socket', async (t) => {
  const path = await socketPath(t);
  await writeFile(path, 'stale');
  const server = new ControlServer({ path, logger: nullLogger, handler: async () => 'pong' });
  await server.start();
  t.equal(await controlRequest(path, 'ping', 2000), 'pong');
  await server.stop();
  await server.stop();
  await t.rejects(stat(path), { code: 'ENOENT' });
});

t.test('a gateway that stops while answering is reported as canceled, not as absent', async (t) => {
  const path = await socketPath(t);
  let answering: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => {
    answering = resolve;
  });
  const handler = () => {
    answering();
    return new Promise<never>(() => undefined);
  };
  const server = new ControlServer({ path, logger: nullLogger, handler });
  await server.start();
  const asking = t.rejects(controlRequest(path, 'sync', 5000), { code: 'ATTACHE_CANCELED' });
  await reached;
  await server.stop();
  await asking;
});

t.test('params reach the handler; its events come back before the answer', async (t) => {
  const path = await socketPath(t);
  const server = new ControlServer({
    path,
    logger: nullLogger,
    handler: async (_method, params, notify) => {
      for (let n = 1; n <= 3; n++) notify({ n });
      return params;
    },
  });
  await server.start();
  t.teardown(() => server.stop());
  const events: unknown[] = [];
  const answer = await controlRequest(path, 'export', 5000, {
    params: { since: '2026-11-01' },
    onEvent: (event) => events.push(event),
  });
  t.same(answer, { since: '2026-11-01' });
  t.same(events, [{ n: 1 }, { n: 2 }, { n: 3 }], 'every event, in order');
});
