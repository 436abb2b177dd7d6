import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { AttacheConfig } from '@attache/core';
import { createTestPki, type TestPki } from '@attache/devkit';
import {
  checkResidency,
  checkRoutes,
  fetchTrustedTime,
  routeUplinkConfig,
  trustedTimeUrl,
  type WindowReport,
  withRouteReports,
} from '@attache/uplink';
import t from 'tap';
import { uplinkConfig } from './fixtures/uplink-fixtures.js';

type Handler = Parameters<typeof createServer>[1];

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function timeServer(t: Teardown, pki: TestPki, handler: Handler): Promise<number> {
  const options = { cert: await readFile(pki.serverCertFile), key: await readFile(pki.serverKeyFile) };
  const server: Server = createServer(options, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** An uplink config whose trusted-time URL is https://localhost:<port>/ with the PKI's CA. */
function configFor(pki: TestPki, port: number, over: Record<string, unknown> = {}) {
  const fixture = { broker: { host: 'localhost', port: 1 }, pki } as never;
  const config = uplinkConfig(fixture, over);
  return { ...config, trustedTime: { ...config.trustedTime, url: `https://localhost:${port}/` } };
}

t.test('trusted time from the endpoint HTTPS Date header', async (t) => {
  const pki = await createTestPki(join(t.testdir(), 'pki'), { thingName: 'gw-test-1' });
  let date: string | undefined = new Date(Date.now() + 120_000).toUTCString();
  const port = await timeServer(t, pki, (_req, res) => {
    res.sendDate = false;
    if (date !== undefined) res.setHeader('Date', date);
    res.writeHead(404).end();
  });

  const time = await fetchTrustedTime(configFor(pki, port));
  t.equal(time.source, 'broker-date');
  t.ok(
    Math.abs(time.offsetMs - 120_000) <= time.uncertaintyMs + 1,
    `a clock 2 min behind: offset ${time.offsetMs} ms ± ${time.uncertaintyMs} ms`,
  );
  t.equal(time.trueMs - time.systemMs, time.offsetMs);
  t.ok(time.uncertaintyMs >= 500, 'at least half the header resolution');

  date = undefined;
  await t.rejects(fetchTrustedTime(configFor(pki, port)), {
    code: 'ATTACHE_UPLINK_CONNECT',
    message: /no valid Date header/,
  });

  date = 'Mon, 01 Jan 1990 00:00:00 GMT';
  await t.rejects(fetchTrustedTime(configFor(pki, port)), {
    message: /outside its own certificate's validity/,
  });

  const rogue = await createTestPki(join(t.testdir(), 'rogue'), { thingName: 'gw-test-1' });
  await t.rejects(fetchTrustedTime(configFor(pki, port, { caFile: rogue.caFile })), {
    code: 'ATTACHE_UPLINK_CONNECT',
    message: /uplink\.caFile/,
  });
});

t.test('trusted time: residency first, unreachable and silent endpoints', async (t) => {
  const pki = await createTestPki(join(t.testdir(), 'pki'), { thingName: 'gw-test-1' });
  let answered = 0;
  const silent = await timeServer(t, pki, () => {
    answered++;
  });
  await t.rejects(fetchTrustedTime(configFor(pki, silent, { allowedRegions: ['eu-central-1'] })), {
    code: 'ATTACHE_UPLINK_CONNECT',
    message: /refused by data residency/,
  });
  t.equal(answered, 0, 'no request to a host outside the allowed regions');
  await t.rejects(fetchTrustedTime(configFor(pki, silent), { timeoutMs: 500 }), { message: /ETIMEDOUT/ });
  await t.rejects(fetchTrustedTime(configFor(pki, 1)), { message: /unreachable \(ECONNREFUSED\)/ });
  const plain = { ...configFor(pki, 1), trustedTime: { enabled: true, maxOffsetMs: 5000, timeoutMs: 1000 } };
  t.equal(trustedTimeUrl(plain).href, 'https://localhost:8443/', 'default: the endpoint on port 8443');
});

const devices = (...ids: string[]) => ids.map((id) => ({ id })) as AttacheConfig['devices'];
const route = (name: string, ids: string[], over: Record<string, unknown> = {}) => ({
  name,
  endpoint: `${name}.example.org`,
  port: 8883,
  certFile: `/etc/${name}.crt`,
  keyFile: `/etc/${name}.key`,
  devices: ids as [string, ...string[]],
  ...over,
});

t.test('routes: overlaps, unknown devices and duplicate names are found', async (t) => {
  const base = uplinkConfig({ broker: { host: 'localhost', port: 1 }, pki: {} } as never);
  const config = (routes: ReturnType<typeof route>[]) =>
    ({ devices: devices('a', 'b', 'c'), uplink: { ...base, routes } }) as unknown as AttacheConfig;
  t.same(checkRoutes(config([route('x', ['a']), route('y', ['b', 'c'])])), [], 'sound routes');
  t.same(checkRoutes({ devices: devices('a') } as AttacheConfig), [], 'no uplink, no routes');
  t.match(checkRoutes(config([route('x', ['a']), route('x', ['b', 'a', 'zz'])])), [
    { path: '/uplink/routes/1/name', message: /another route is named "x"/ },
    { path: '/uplink/routes/1/devices/1', message: /already routed to "x"/ },
    { path: '/uplink/routes/1/devices/2', message: /no device "zz"/ },
  ]);
});

t.test("a route's window config: its endpoint and certificate, residency inherited or its own", async (t) => {
  const base = {
    ...uplinkConfig({ broker: { host: 'localhost', port: 1 }, pki: { caFile: '/etc/ca.pem' } } as never),
    allowedRegions: ['eu-central-1'],
  };
  base.window = { ...base.window, preHook: { command: ['true'], timeoutSeconds: 5 } };
  const inherited = routeUplinkConfig(base, route('x', ['a']));
  t.match(inherited, { endpoint: 'x.example.org', certFile: '/etc/x.crt', shadowName: '', routes: [] });
  t.equal(inherited.caFile, undefined, "the default route's CA is not the route's");
  t.same(inherited.allowedRegions, ['eu-central-1'], 'residency inherited');
  t.equal(inherited.window.preHook, undefined, 'hooks run once, around all routes');
  t.equal(inherited.trustedTime.enabled, false);
  const own = routeUplinkConfig(
    base,
    route('y', ['b'], { caFile: '/etc/y-ca.pem', allowedRegions: ['eu-west-1'], allowedEndpoints: ['y'] }),
  );
  t.match(own, { caFile: '/etc/y-ca.pem', allowedRegions: ['eu-west-1'], allowedEndpoints: ['y'] });
  t.throws(() => checkResidency(inherited), { code: 'ATTACHE_UPLINK_CONNECT' }, 'x.example.org refused');
});

t.test('fipsOnly accepts a host listed in allowedEndpoints, and FIPS endpoints', async (t) => {
  const base = uplinkConfig({ broker: { host: 'localhost', port: 1 }, pki: {} } as never, { fipsOnly: true });
  t.throws(() => checkResidency(base), { message: /fipsOnly/ });
  t.match(checkResidency({ ...base, allowedEndpoints: ['localhost'] }), { fips: false });
  t.match(checkResidency({ ...base, endpoint: 'data.iot-fips.us-east-1.amazonaws.com' }), {
    fips: true,
    region: 'us-east-1',
  });
});

t.test('a window with routes reports the worst outcome and names the failed route', async (t) => {
  const report = (outcome: WindowReport['outcome'], error?: WindowReport['error']): WindowReport => ({
    openedAt: '2026-11-24T08:00:00.000Z',
    closedAt: '2026-11-24T08:00:05.000Z',
    outcome,
    endedBy: outcome === 'deadline' ? 'deadline' : outcome,
    records: 1,
    messages: 1,
    bytes: 100,
    firstSeq: 1,
    lastSeq: 1,
    events: 0,
    ...(error ? { error } : {}),
  });
  const alone = report('drained');
  t.equal(withRouteReports(alone, {}), alone, 'no routes: unchanged');
  const down = report('failed', {
    code: 'ATTACHE_UPLINK_CONNECT',
    message: 'broker unreachable (ECONNREFUSED)',
  });
  const merged = withRouteReports(alone, { a: report('deadline'), b: down });
  t.match(merged, {
    outcome: 'failed',
    records: 1,
    error: { code: 'ATTACHE_UPLINK_CONNECT', message: 'route b: broker unreachable (ECONNREFUSED)' },
    routes: { a: { outcome: 'deadline' }, b: { outcome: 'failed' } },
  });
  const own = report('failed', { code: 'ATTACHE_UPLINK_PUBLISH', message: 'connection lost' });
  t.match(
    withRouteReports(own, { b: down }).error,
    { code: 'ATTACHE_UPLINK_PUBLISH' },
    "the default's own error first",
  );
});
