// The gateway in-process: a real cache on disk, a real TCP device adapter fed over a socket, and a
// ManualClock for its timers, so nothing waits a real interval.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock, nullLogger } from '@attache/core';
import t, { type Test } from 'tap';
import { Gateway, type GatewayStatus, loadConfig, openCache } from '../src/index.js';

const spo2 = { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } };

/** A temporary directory short enough for the control socket's path; removed at teardown. */
async function shortDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attache-gw-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    }),
  );
}

/** A config with one monitor on `port`; endpoints outside `allowedEndpoints`, so no window connects. */
function configOf(dir: string, port: number, uplink: Record<string, unknown> = {}) {
  return {
    version: 1,
    gateway: { id: 'gw-p', dataDir: join(dir, 'data'), clockSyncFile: join(dir, 'synced') },
    cache: { diskReserveBytes: 0 },
    devices: [
      {
        id: 'mon',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
        format: spo2,
      },
    ],
    uplink: {
      endpoint: 'default.invalid',
      certFile: 'c',
      keyFile: 'k',
      allowedEndpoints: ['127.0.0.1'],
      ...uplink,
    },
  };
}

/** Starts a gateway on the config file `path`; stopped at teardown. */
async function started(t: Test, path: string, clock: ManualClock): Promise<Gateway> {
  const gateway = new Gateway({
    config: await loadConfig(path),
    configPath: path,
    logger: nullLogger,
    clock,
  });
  await gateway.start();
  t.teardown(() => gateway.stop());
  return gateway;
}

/** Polls `status()` until `done` holds (a real wait for real I/O, up to 30 s), then returns it. */
async function statusUntil(gateway: Gateway, done: (s: GatewayStatus) => boolean): Promise<GatewayStatus> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const status = await gateway.status();
    if (done(status) || Date.now() > deadline) return status;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Connects to the monitor's port (retried while the adapter starts listening) and sends `lines`. */
async function send(port: number, lines: string[]): Promise<Socket> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const s = connect(port, '127.0.0.1', () => resolve(s)).once('error', () => resolve(undefined));
    });
    if (socket) {
      socket.write(lines.map((l) => `${l}\r\n`).join(''));
      return socket;
    }
    if (Date.now() > deadline) throw new Error('the monitor port did not open within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('the interval policy opens its window on the gateway clock', async (t) => {
  const dir = await shortDir(t);
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify(configOf(dir, await freePort(), { window: { everySeconds: 60, jitterSeconds: 0 } })),
  );
  const clock = new ManualClock();
  const gateway = await started(t, path, clock);
  t.equal((await gateway.status()).lastWindow, null, 'no window at start');
  await clock.advance(59_000);
  t.equal((await gateway.status()).lastWindow, null, 'none before the interval');
  await clock.advance(1_000);
  const status = await statusUntil(gateway, (s) => s.lastWindow !== null);
  t.match(status.lastWindow, {
    trigger: 'interval',
    outcome: 'failed',
    error: { message: /default\.invalid/ },
  });
});

t.test("a reload that adds a route sends the device's next readings to its outbox", async (t) => {
  const dir = await shortDir(t);
  const path = join(dir, 'config.json');
  const port = await freePort();
  await writeFile(path, JSON.stringify(configOf(dir, port)));
  const gateway = await started(t, path, new ManualClock());
  const first = await send(port, ['SPO2=97']);
  t.teardown(() => first.destroy());
  t.equal(
    (await statusUntil(gateway, (s) => s.backlog.records === 1)).backlog.records,
    1,
    'stored in the cache',
  );

  const route = { name: 'lab', endpoint: 'lab.invalid', certFile: 'c', keyFile: 'k', devices: ['mon'] };
  await writeFile(path, JSON.stringify(configOf(dir, port, { routes: [route] })));
  await gateway.reload();
  const second = await send(port, ['SPO2=96', 'SPO2=95']);
  t.teardown(() => second.destroy());
  const status = await statusUntil(gateway, (s) => s.routes?.lab?.records === 2);
  t.equal(status.routes?.lab?.records, 2, "the device's next readings are in the route's outbox");
  t.equal(status.backlog.records, 1, 'none went to the default outbox');
});

t.test('a drop between the last poll and the stop is journaled before the cache closes', async (t) => {
  const dir = await shortDir(t);
  const path = join(dir, 'config.json');
  const port = await freePort();
  const config = {
    ...configOf(dir, port),
    cache: { diskReserveBytes: 0, maxRecords: 1, whenFull: 'drop-oldest' },
  };
  await writeFile(path, JSON.stringify(config));
  const clock = new ManualClock();
  const gateway = new Gateway({ config: await loadConfig(path), logger: nullLogger, clock });
  await gateway.start();
  const socket = await send(port, ['SPO2=97', 'SPO2=96']);
  t.teardown(() => socket.destroy());
  await statusUntil(gateway, (s) => s.cache.dropped === 1);
  await gateway.stop();

  const cache = await openCache(await loadConfig(path), nullLogger);
  t.teardown(() => cache.close());
  const journal = await cache.getState<{ pending: { type: string; detail: unknown }[] }>('events.journal');
  t.same(
    journal?.pending.filter((e) => e.type === 'cache.records-dropped').map((e) => e.detail),
    [{ count: 1, total: 1 }],
    'the drop is an event waiting for the next window',
  );
});

/** A monitor that listens (the gateway connects to it, `mode: connect`); its connections in order. */
async function listeningMonitor(t: Test): Promise<{ port: number; links: Socket[] }> {
  const links: Socket[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => {});
    links.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const link of links) link.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as { port: number }).port, links };
}

/** The device events journaled by the stopped gateway of `path`, oldest first. */
async function deviceEvents(t: Test, path: string): Promise<string[]> {
  const cache = await openCache(await loadConfig(path), nullLogger);
  t.teardown(() => cache.close());
  const journal = await cache.getState<{ pending: { type: string; detail: Record<string, unknown> }[] }>(
    'events.journal',
  );
  return (journal?.pending ?? [])
    .filter((e) => e.type.startsWith('device.'))
    .map((e) => `${e.type} ${e.detail.deviceId} ${e.detail.lastErrorCode ?? ''}`.trim());
}

t.test('a link lost and back between two polls is journaled as both events, in order', async (t) => {
  const dir = await shortDir(t);
  const path = join(dir, 'config.json');
  const monitor = await listeningMonitor(t);
  const config = configOf(dir, monitor.port);
  config.devices = [
    {
      id: 'mon',
      adapter: 'ethernet',
      endpoint: { mode: 'connect', host: '127.0.0.1', port: monitor.port, reconnectMs: 100 },
      format: spo2,
    },
  ] as unknown as typeof config.devices;
  await writeFile(path, JSON.stringify(config));
  // The clock never reaches the 5 s cache poll: only the adapters' own state events can report.
  const clock = new ManualClock();
  const gateway = new Gateway({
    config: await loadConfig(path),
    configPath: path,
    logger: nullLogger,
    clock,
  });
  await gateway.start();
  const linked = (n: number) =>
    statusUntil(gateway, (s) => monitor.links.length === n && s.adapters[0]?.state === 'connected');
  await linked(1);
  // The monitor drops the link; the adapter reconnects 100 ms later.
  monitor.links[0]?.destroy();
  t.equal((await linked(2)).adapters[0]?.state, 'connected', 'back on a second connection');

  // A reload builds new adapters: the device stays connected (no event); a drop of the new
  // adapter's link is reported, and polls running meanwhile report nothing twice.
  await gateway.reload();
  await linked(3);
  await clock.advance(5000);
  monitor.links[2]?.destroy();
  await linked(4);
  await clock.advance(10_000);
  await gateway.stop();

  t.same(
    await deviceEvents(t, path),
    [
      'device.connected mon',
      'device.lost mon ATTACHE_PORT_NOT_OPEN',
      'device.connected mon',
      'device.lost mon ATTACHE_PORT_NOT_OPEN',
      'device.connected mon',
    ],
    'every change once, the reload none',
  );
});
