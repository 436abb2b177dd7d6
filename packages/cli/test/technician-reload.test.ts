// The technician page follows a reloaded config (a config-update job, or the page's own apply): it
// starts when the section is added, moves when its port changes (the technician stays logged in)
// and stops when the section is removed, without a gateway restart.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, nullLogger } from '@attache/core';
import { getFreePort } from '@attache/devkit';
import { Gateway, loadConfig } from '@attache/gateway';
import { readSecret, technicianSecretPath } from '@attache/technician';
import t from 'tap';
import { startTechnicianPage } from '../src/technician-host.js';

interface Answer {
  status: number;
  cookie?: string;
  json: Record<string, unknown>;
}

/** The page's answer to `path` on `port` (a new connection each time), or the connection's error code. */
function ask(
  port: number,
  path: string,
  options: { cookie?: string; body?: unknown } = {},
): Promise<Answer | string> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        method: options.body === undefined ? 'GET' : 'POST',
        headers: {
          ...(options.cookie ? { cookie: options.cookie } : {}),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          data += chunk;
        });
        res.on('end', () => {
          const cookie = res.headers['set-cookie']?.[0]?.split(';')[0];
          const json = res.headers['content-type']?.startsWith('application/json') ? JSON.parse(data) : {};
          resolve({ status: res.statusCode ?? 0, ...(cookie ? { cookie } : {}), json });
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'failed'));
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
  });
}

t.test('the page starts, moves and stops with a reloaded technician section', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-tr-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [first, second, device] = [await getFreePort(), await getFreePort(), await getFreePort()];
  const path = join(dir, 'config.json');
  const write = (technician?: Record<string, unknown>) =>
    writeFile(
      path,
      JSON.stringify({
        version: 1,
        gateway: { id: 'gw-tr', dataDir: join(dir, 'data'), clockSyncFile: join(dir, 'synced') },
        cache: { diskReserveBytes: 0 },
        devices: [
          {
            id: 'mon',
            adapter: 'ethernet',
            endpoint: { mode: 'listen', host: '127.0.0.1', port: device, allow: ['127.0.0.1'] },
            format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
          },
        ],
        ...(technician ? { technician } : {}),
      }),
    );
  await write();
  const gateway = new Gateway({
    config: await loadConfig(path),
    configPath: path,
    logger: nullLogger,
    clock: new ManualClock(),
    page: startTechnicianPage,
  });
  await gateway.start();
  t.teardown(() => gateway.stop());
  t.equal(await ask(first, '/'), 'ECONNREFUSED', 'no section: nothing listens');

  await write({ listen: ['127.0.0.1'], port: first });
  await gateway.reload();
  const secret = (await readSecret(technicianSecretPath(join(dir, 'data')))) as string;
  const login = (await ask(first, '/api/login', { body: { name: 'Dana (biomed)', secret } })) as Answer;
  t.equal(login.status, 200, 'added: the page answers and the secret logs in');

  await write({ listen: ['127.0.0.1'], port: second });
  await gateway.reload();
  t.equal(await ask(first, '/'), 'ECONNREFUSED', 'moved: the old port is closed');
  const status = await ask(second, '/api/status', { cookie: login.cookie as string });
  t.match(
    status,
    { status: 200, json: { gatewayId: 'gw-tr' } },
    'moved: the same login works at the new port',
  );

  await write();
  await gateway.reload();
  // Stopping is not waited for by the reload (the page may have asked for it): wait until it has.
  let answer = await ask(second, '/');
  const deadline = Date.now() + 30_000;
  while (answer !== 'ECONNREFUSED' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    answer = await ask(second, '/');
  }
  t.equal(answer, 'ECONNREFUSED', 'removed: nothing listens');
});
