// The page server over real HTTP on loopback, with a host that serves readings the way the gateway
// does (the gateway itself is tested end to end in test/technician.test.ts).
import { request } from 'node:http';
import { type AdapterStatus, ManualClock, type WindowResult } from '@attache/core';
import { getFreePort, type LogEntry, recordingLogger } from '@attache/devkit';
import t, { type Test } from 'tap';
import {
  type LiveReading,
  loadOrCreateSecret,
  type ProbeProgress,
  readSecret,
  rotateSecret,
  type TechnicianHost,
  TechnicianServer,
  technicianSecretPath,
} from '../src/index.js';

class TestHost implements TechnicianHost {
  readonly listeners = new Set<(r: LiveReading) => void>();
  windows = 0;
  failWindow = false;
  adapters: AdapterStatus[] = [
    {
      deviceId: 'spo2-bed7',
      adapter: 'rs232',
      state: 'connected',
      since: '2026-12-01T10:00:00.000Z',
      frames: 3,
      stored: 3,
      malformed: 0,
      refused: 0,
    },
  ];
  status() {
    return Promise.resolve({
      gatewayId: 'gw-1',
      startedAt: '2026-12-01T10:00:00.000Z',
      adapters: this.adapters,
      backlog: { records: 3, bytes: 900, firstSeq: 1, lastSeq: 3, oldestCapturedAt: null, nextSeq: 4 },
      lastWindow: null,
      uplink: { configured: true, windowOpen: false },
    });
  }
  onReading(listener: (r: LiveReading) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  send(reading: LiveReading) {
    for (const l of this.listeners) l(reading);
  }
  applied: unknown[] = [];
  ports() {
    return Promise.resolve([
      { path: '/dev/ttyUSB1', links: ['/dev/serial/by-id/usb-FTDI-if00'], usedBy: null, heldBy: [] },
    ]);
  }
  async probe(path: string, seconds: number, onProgress: (p: ProbeProgress) => void) {
    onProgress({ setting: '9600 8N1', bytes: 42, lines: 2, keyValueLines: 2 });
    return {
      path,
      recognized: `KEY=VALUE lines (${seconds} s)`,
      setting: '9600 8N1',
      keys: ['SPO2'],
      suggested: { id: 'device-2' },
    };
  }
  config() {
    return Promise.resolve({ version: 1 });
  }
  checkConfig(config: unknown) {
    const bad = (config as { bad?: boolean }).bad === true;
    return Promise.resolve({
      valid: !bad,
      issues: bad ? [{ path: '/devices/1/port/baudRate', message: 'must be one of 9600, 19200' }] : [],
      warnings: [],
    });
  }
  applyConfig(config: unknown) {
    this.applied.push(config);
    return Promise.resolve({ applied: true, issues: [] });
  }
  doctor() {
    return Promise.resolve([
      { check: 'clock', status: 'warn' as const, detail: 'not synchronized', action: 'check NTP' },
    ]);
  }
  async exportToStick(onProgress: (p: { records: number; total: number }) => void) {
    onProgress({ records: 1000, total: 1500 });
    return { file: '/media/attache-usb/gw-1.attache', records: 1500 };
  }
  openWindow(): Promise<WindowResult> {
    this.windows += 1;
    if (this.failWindow) return Promise.reject(new Error('no route to the endpoint'));
    return Promise.resolve({
      openedAt: 'x',
      closedAt: 'y',
      outcome: 'drained',
      records: 3,
      messages: 1,
      bytes: 900,
      firstSeq: 1,
      lastSeq: 3,
    });
  }
}

const reading: LiveReading = {
  deviceId: 'spo2-bed7',
  capturedAt: '2026-12-01T10:00:05.000Z',
  observations: [
    { code: 'MDC_PULS_OXIM_SAT_O2', name: 'SpO₂', system: 'MDC', value: 97, unit: '%', status: 'valid' },
  ],
};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function start(t: Test, listen = ['127.0.0.1']) {
  const dir = t.testdir();
  const port = await getFreePort();
  const secretPath = technicianSecretPath(dir);
  const secret = await loadOrCreateSecret(secretPath);
  const host = new TestHost();
  const logs: LogEntry[] = [];
  const clock = new ManualClock();
  const server = new TechnicianServer({
    listen,
    port,
    sessionMinutes: 30,
    secretPath,
    host,
    logger: recordingLogger(logs),
    clock,
  });
  await server.start();
  t.teardown(() => server.stop());
  const base = { hostname: '127.0.0.1', port };
  const call = (
    method: string,
    path: string,
    options: { body?: unknown; cookie?: string; headers?: Record<string, string> } = {},
  ) =>
    new Promise<Answer>((resolve, reject) => {
      const text = options.body === undefined ? undefined : JSON.stringify(options.body);
      const req = request(
        {
          ...base,
          method,
          path,
          headers: {
            ...(text === undefined ? {} : { 'content-type': 'application/json' }),
            ...(options.cookie ? { cookie: options.cookie } : {}),
            ...options.headers,
          },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  const login = async () => {
    const res = await call('POST', '/api/login', { body: { name: 'Dana (biomed)', secret } });
    return String(res.headers['set-cookie']).split(';')[0] as string;
  };
  return { server, host, logs, clock, secret, secretPath, port, call, login };
}

t.test('the page is served to anyone; the data only after login', async (t) => {
  const { call, server, port } = await start(t);
  t.same(server.urls, [`http://127.0.0.1:${port}/`]);
  const page = await call('GET', '/');
  t.equal(page.status, 200);
  t.match(page.body, /<form id="login"/);
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
  t.equal(page.headers['x-frame-options'], 'DENY');
  t.equal((await call('GET', '/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
  t.equal((await call('GET', '/app.css')).status, 200);
  t.equal((await call('GET', '/etc/passwd')).status, 404);
  const status = await call('GET', '/api/status');
  t.equal(status.status, 401);
  t.equal(JSON.parse(status.body).error.code, 'ATTACHE_UNAUTHORIZED');
  t.equal((await call('GET', '/api/events')).status, 401);
});

t.test('login sets a strict, HttpOnly, expiring cookie, and the action is logged without data', async (t) => {
  const { call, secret, logs } = await start(t);
  const res = await call('POST', '/api/login', { body: { name: 'Dana <b>(biomed)</b>', secret } });
  t.equal(res.status, 200);
  const cookie = String(res.headers['set-cookie']);
  t.match(cookie, /^attache_tech=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=1800$/);
  t.equal(JSON.parse(res.body).who, 'Dana b(biomed)b', 'markup is stripped from the name');
  const session = await call('GET', '/api/session', { cookie: cookie.split(';')[0] as string });
  t.equal(JSON.parse(session.body).who, 'Dana b(biomed)b');
  const entry = logs.find((l) => l.action === 'login');
  t.match(entry, { who: 'Dana b(biomed)b', action: 'login', remote: '127.0.0.1', msg: 'technician action' });
  t.notMatch(JSON.stringify(logs), secret, 'the secret is never logged');
});

t.test('wrong secrets are refused, and after five the page makes the next wait', async (t) => {
  const { call, secret, clock, logs } = await start(t);
  const missingName = await call('POST', '/api/login', { body: { name: ' ', secret } });
  t.equal(missingName.status, 401);
  t.equal(JSON.parse(missingName.body).error.message, 'type your name');
  for (let i = 0; i < 4; i++) {
    const res = await call('POST', '/api/login', { body: { name: 'x', secret: 'AAAA-AAAA-AAAA-AAAA' } });
    t.equal(res.status, 401);
  }
  const throttled = await call('POST', '/api/login', { body: { name: 'x', secret } });
  t.equal(throttled.status, 429, 'even the right secret waits');
  t.equal(throttled.headers['retry-after'], '30');
  t.ok(logs.some((l) => l.outcome === 'throttled'));
  await clock.advance(30_000);
  t.equal((await call('POST', '/api/login', { body: { name: 'x', secret } })).status, 200);
});

t.test('bad bodies are refused with their reason', async (t) => {
  const { call } = await start(t);
  const form = await call('POST', '/api/login', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(form.status, 415, 'a cross-site form cannot log in');
  const notObject = await call('POST', '/api/login', { body: [1] });
  t.equal(notObject.status, 400);
  const huge = await call('POST', '/api/login', { body: { name: 'x'.repeat(300_000) } }).catch(
    (err: NodeJS.ErrnoException) => ({ status: 413, headers: {}, body: err.code ?? '' }),
  );
  t.equal(huge.status, 413);
});

t.test('another Host (DNS rebinding) or another Origin (a page elsewhere) is refused', async (t) => {
  const { call, login } = await start(t);
  const cookie = await login();
  const rebound = await call('GET', '/api/status', { cookie, headers: { host: 'evil.example:80' } });
  t.equal(rebound.status, 421);
  const crossSite = await call('POST', '/api/window', {
    body: {},
    cookie,
    headers: { origin: 'http://evil.example' },
  });
  t.equal(crossSite.status, 403);
});

t.test('status adds the last reading time; readings stream as server-sent events', async (t) => {
  const { call, login, host, port } = await start(t);
  const cookie = await login();
  host.send(reading);
  const status = JSON.parse((await call('GET', '/api/status', { cookie })).body);
  t.equal(status.adapters[0].lastReadingAt, reading.capturedAt);
  const events = await new Promise<string>((resolve, reject) => {
    const req = request({ hostname: '127.0.0.1', port, path: '/api/events', headers: { cookie } }, (res) => {
      t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        // The last reading on connecting, then the one sent now.
        if (text.split('event: reading').length === 3) {
          req.destroy();
          resolve(text);
        }
      });
      setImmediate(() => host.send({ ...reading, capturedAt: '2026-12-01T10:00:06.000Z' }));
    });
    req.on('error', reject);
    req.end();
  });
  t.match(
    events,
    /^retry: 2000\n\nevent: reading\ndata: \{"deviceId":"spo2-bed7","capturedAt":"2026-12-01T10:00:05.000Z"/,
  );
  t.match(
    events,
    /"code":"MDC_PULS_OXIM_SAT_O2","name":"SpO₂","system":"MDC","value":97,"unit":"%","status":"valid"/,
  );
  t.match(events, /10:00:06/);
});

t.test('open a window: its result, logged with who; a failure is a failed result', async (t) => {
  const { call, login, host, logs } = await start(t);
  const cookie = await login();
  const ok = JSON.parse((await call('POST', '/api/window', { body: {}, cookie })).body);
  t.equal(ok.outcome, 'drained');
  host.failWindow = true;
  const failed = JSON.parse((await call('POST', '/api/window', { body: {}, cookie })).body);
  t.match(failed, {
    outcome: 'failed',
    error: { code: 'ATTACHE_INTERNAL', message: 'no route to the endpoint' },
  });
  t.equal(host.windows, 2);
  t.equal(
    logs.filter((l) => l.action === 'window.open' && l.who === 'Dana (biomed)').length,
    4,
    'asked and done, twice',
  );
  t.equal((await call('GET', '/api/nothing', { cookie })).status, 404);
});

t.test('a rotated secret, an expired session or a logout ends access', async (t) => {
  const { call, login, clock, secretPath } = await start(t);
  const first = await login();
  await rotateSecret(secretPath);
  t.equal((await call('GET', '/api/status', { cookie: first })).status, 401, 'rotated');
  const current = (await readSecret(secretPath)) as string;
  const res = await call('POST', '/api/login', { body: { name: 'x', secret: current } });
  const second = String(res.headers['set-cookie']).split(';')[0] as string;
  await clock.advance(30 * 60_000);
  t.equal((await call('GET', '/api/status', { cookie: second })).status, 401, 'expired');
  const again = await call('POST', '/api/login', { body: { name: 'x', secret: current } });
  const third = String(again.headers['set-cookie']).split(';')[0] as string;
  const out = await call('POST', '/api/logout', { body: {}, cookie: third });
  t.match(String(out.headers['set-cookie']), /Max-Age=0/);
  t.equal((await call('GET', '/api/status', { cookie: third })).status, 401, 'logged out');
});

t.test('an interface name binds its addresses; the unbindable is logged, not fatal', async (t) => {
  const { server, port } = await start(t, ['lo', '192.0.2.77']);
  t.ok(server.urls.includes(`http://127.0.0.1:${port}/`), 'lo gives 127.0.0.1');
  t.notOk(
    server.urls.some((u) => u.includes('192.0.2.77')),
    'an address this box lacks is not bound',
  );
});

t.test(
  'ports, a live probe and the config: checked at its fields, applied with who in the log',
  async (t) => {
    const { call, login, host, logs } = await start(t);
    const cookie = await login();
    const ports = JSON.parse((await call('GET', '/api/ports', { cookie })).body);
    t.equal(ports[0].links[0], '/dev/serial/by-id/usb-FTDI-if00');
    const probe = await call('POST', '/api/probe', { body: { path: '/dev/ttyUSB1', seconds: 999 }, cookie });
    t.equal(probe.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    const [progress, result] = probe.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    t.match(progress, { progress: { setting: '9600 8N1', bytes: 42 } });
    t.match(
      result,
      { result: { recognized: 'KEY=VALUE lines (60 s)', suggested: { id: 'device-2' } } },
      'at most 60 s',
    );
    t.equal((await call('POST', '/api/probe', { body: { path: '/etc/shadow' }, cookie })).status, 400);
    t.equal((await call('POST', '/api/probe', { body: 'x', cookie })).status, 400);
    t.same(JSON.parse((await call('GET', '/api/config', { cookie })).body), { config: { version: 1 } });
    const bad = JSON.parse(
      (await call('POST', '/api/config/check', { body: { config: { bad: true } }, cookie })).body,
    );
    t.match(bad, { valid: false, issues: [{ path: '/devices/1/port/baudRate' }] });
    t.equal((await call('POST', '/api/config/check', { body: [], cookie })).status, 400);
    const applied = JSON.parse(
      (await call('POST', '/api/config/apply', { body: { config: { version: 1 } }, cookie })).body,
    );
    t.same(applied, { applied: true, issues: [] });
    t.same(host.applied, [{ version: 1 }]);
    t.equal((await call('POST', '/api/config/apply', { body: [], cookie })).status, 400);
    const doctor = JSON.parse((await call('GET', '/api/doctor', { cookie })).body);
    t.match(doctor, [{ check: 'clock', status: 'warn' }]);
    const exported = (await call('POST', '/api/export', { body: {}, cookie })).body.trim().split('\n');
    t.same(
      exported.map((l) => JSON.parse(l)),
      [
        { progress: { records: 1000, total: 1500 } },
        { result: { file: '/media/attache-usb/gw-1.attache', records: 1500 } },
      ],
    );
    const actions = logs.filter((l) => l.msg === 'technician action').map((l) => l.action);
    t.same(actions, ['login', 'probe', 'config.apply', 'export']);
  },
);

/** Opens the event stream; resolves with the response and a reader of everything received. */
function stream(port: number, cookie: string) {
  return new Promise<{ text: () => string; ended: Promise<void>; close: () => void }>((resolve, reject) => {
    const req = request({ hostname: '127.0.0.1', port, path: '/api/events', headers: { cookie } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      const ended = new Promise<void>((r) => res.on('end', () => r()));
      resolve({ text: () => text, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('event streams: a heartbeat, ended at logout; a fifth browser ends the oldest', async (t) => {
  const { call, login, clock, port } = await start(t);
  const cookie = await login();
  const first = await stream(port, cookie);
  t.teardown(() => first.close());
  await clock.advance(15_000);
  for (
    const deadline = Date.now() + 30_000;
    !first.text().includes(': still here') && Date.now() < deadline;
  ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.match(first.text(), ': still here', 'a comment keeps an idle stream open');
  const more: Awaited<ReturnType<typeof stream>>[] = [];
  for (let i = 0; i < 4; i++) more.push(await stream(port, cookie));
  t.teardown(() => {
    for (const s of more) s.close();
  });
  await first.ended;
  t.pass('the oldest of five streams was ended');
  await call('POST', '/api/logout', { body: {}, cookie });
  await clock.advance(15_000);
  await Promise.all(more.map((s) => s.ended));
  t.pass('a logged-out session loses its streams at the next heartbeat');
});

t.test(
  'listen: an address as given, an interface by its addresses, IPv6 link-local with its zone',
  async (t) => {
    const { resolveListen, hostHeader } = await import('../src/index.js');
    const usb0 = [
      {
        address: '169.254.7.1',
        netmask: '255.255.255.0',
        family: 'IPv4',
        mac: '',
        internal: false,
        cidr: null,
      },
      {
        address: 'fe80::1',
        netmask: 'ffff::',
        family: 'IPv6',
        mac: '',
        internal: false,
        cidr: null,
        scopeid: 3,
      },
      {
        address: 'fd00::7',
        netmask: 'ffff::',
        family: 'IPv6',
        mac: '',
        internal: false,
        cidr: null,
        scopeid: 0,
      },
    ] as ReturnType<typeof import('node:os').networkInterfaces>[string];
    const addresses = resolveListen(['usb0', '10.0.0.9', 'fd00::8', 'eth9'], { usb0 });
    t.same(addresses, [
      { address: '169.254.7.1', family: 4 },
      { address: 'fe80::1%usb0', family: 6 },
      { address: 'fd00::7', family: 6 },
      { address: '10.0.0.9', family: 4 },
      { address: 'fd00::8', family: 6 },
    ]);
    t.equal(
      hostHeader({ address: 'fe80::1%usb0', family: 6 }, 8080),
      '[fe80::1]:8080',
      'the Host a browser sends',
    );
  },
);
