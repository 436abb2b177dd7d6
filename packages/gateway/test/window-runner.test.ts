// A window that fails before or outside the upload still says why: the window process's own
// failures and a window that cannot start are recorded with their code and message.
import {
  type AttacheConfig,
  GatewayError,
  nullLogger,
  type RecordDraft,
  validateConfig,
} from '@attache/core';
import t from 'tap';
import { openCache } from '../dist/open-cache.js';
import { WindowRunner } from '../dist/window-runner.js';

function config(dir: string, uplink: Record<string, unknown> = {}): AttacheConfig {
  return validateConfig({
    version: 1,
    gateway: { id: 'gw-w', dataDir: dir },
    devices: [{ id: 'd', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } }],
    uplink: { endpoint: '127.0.0.1', port: 1, certFile: 'c', keyFile: 'k', ...uplink },
  });
}

function draft(deviceId: string): RecordDraft {
  return {
    gatewayId: 'gw-w',
    deviceId,
    adapter: 'rs232',
    protocol: 'astm',
    capturedAt: new Date(Date.UTC(2026, 10, 1)).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: 1 },
    observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 97, unit: '%', status: 'valid' }],
  };
}

t.test('a failure inside the window process is reported with its message', async (t) => {
  const dir = t.testdir();
  const cfg = config(dir);
  const cache = await openCache(cfg, nullLogger);
  t.teardown(() => cache.close());
  // A log level the window process's logger refuses: it throws there, outside the upload's handling.
  const broken = { ...cfg, log: { level: 'loud' } } as unknown as AttacheConfig;
  const window = await new WindowRunner({ config: broken, cache, logger: nullLogger }).run();
  t.match(window, { outcome: 'failed', endedBy: 'failed', records: 0 });
  t.equal(window.error?.code, 'ATTACHE_INTERNAL');
  t.match(window.error?.message, /loud/, 'the message says what failed, not only that the process ended');
  t.notMatch(window.error?.message, /before reporting/);
});

t.test('a window that cannot start is recorded as failed with its cause', async (t) => {
  const dir = t.testdir();
  const cfg = config(dir, {
    routes: [{ name: 'lab', endpoint: '127.0.0.1', certFile: 'c', keyFile: 'k', devices: ['d'] }],
  });
  const cache = await openCache(cfg, nullLogger);
  t.teardown(() => cache.close());
  const runner = new WindowRunner({
    config: cfg,
    cache,
    logger: nullLogger,
    openOutbox: () => Promise.reject(new GatewayError('ATTACHE_CACHE_LOCKED', 'the route outbox is held')),
  });
  const window = await runner.run();
  t.match(window, {
    outcome: 'failed',
    error: { code: 'ATTACHE_CACHE_LOCKED', message: 'the route outbox is held' },
  });
  t.match(
    await runner.last(),
    { outcome: 'failed', error: { code: 'ATTACHE_CACHE_LOCKED' } },
    'kept for status',
  );
  const plain = await new WindowRunner({
    config: cfg,
    cache,
    logger: nullLogger,
    openOutbox: () => Promise.reject(new Error('disk gone')),
  }).run();
  t.match(plain.error, { code: 'ATTACHE_INTERNAL', message: 'disk gone' });
});

t.test('a reconfigure that adds or moves a route sends the next records and windows there', async (t) => {
  const dir = t.testdir();
  // Every route endpoint is outside the uplink's residency list: a window names the host it refused.
  const route = (name: string, endpoint: string, devices: string[]) => ({
    name,
    endpoint,
    certFile: 'c',
    keyFile: 'k',
    devices,
  });
  const devices = [
    { id: 'd', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } },
    { id: 'e', adapter: 'rs232', port: { path: '/dev/ttyS1' }, format: { kind: 'astm' } },
  ];
  const withRoutes = (routes: unknown[]) =>
    validateConfig({
      ...config(dir),
      devices,
      uplink: { ...config(dir).uplink, allowedEndpoints: ['127.0.0.1'], routes },
    });
  const before = withRoutes([route('lab', 'old.invalid', ['d'])]);
  const cache = await openCache(before, nullLogger);
  t.teardown(() => cache.close());
  const runner = new WindowRunner({ config: before, cache, logger: nullLogger });
  await runner.openRoutes();
  t.teardown(() => runner.closeRoutes());
  const lab = runner.outboxFor('d');
  t.ok(lab, 'd goes to lab');
  t.equal(runner.outboxFor('e'), undefined, 'e takes the default route');

  // The reloaded config moves d to a new route, gives e the old one and points lab elsewhere.
  await runner.reconfigure(
    withRoutes([route('lab', 'new.invalid', ['e']), route('icu', 'icu.invalid', ['d'])]),
  );
  t.equal(runner.outboxFor('e'), lab, 'e goes to lab now, through the same outbox');
  t.not(runner.outboxFor('d'), lab, 'd no longer goes to lab');
  t.ok(runner.outboxFor('d'), 'd goes to the new route');
  t.same(Object.keys(await runner.routeBacklogs()).sort(), ['icu', 'lab']);
  for (const id of ['d', 'e']) await runner.outboxFor(id)?.append(draft(id));
  const window = await runner.run();
  t.match(
    window.routes?.lab?.error?.message,
    /endpoint new\.invalid .*refused/,
    "lab's window goes to its new endpoint",
  );
  t.match(
    window.routes?.icu?.error?.message,
    /endpoint icu\.invalid .*refused/,
    'the new route has its window',
  );

  // A route removed by a reload keeps its outbox (drained to its endpoint) and takes no device.
  await runner.reconfigure(withRoutes([route('icu', 'icu.invalid', ['d'])]));
  t.equal(runner.outboxFor('e'), undefined, 'e takes the default route again');
  t.same(Object.keys(await runner.routeBacklogs()).sort(), ['icu', 'lab'], 'lab is still drained');
});

t.test('files go up after the telemetry with what its budget left, or first with priority', async (t) => {
  const dir = t.testdir();
  const calls: { maxBytes: number; aborted: boolean }[] = [];
  const files = {
    upload: async (options: { maxBytes: number; signal?: AbortSignal }) => {
      calls.push({ maxBytes: options.maxBytes, aborted: options.signal?.aborted ?? false });
      return {
        uploaded: 1,
        bytes: 100,
        failed: 0,
        remaining: 0,
        endedBy: 'drained' as const,
        destinations: {},
      };
    },
  };
  const upload = {
    credentialsEndpoint: 'creds.example',
    roleAlias: 'a',
    bucket: 'files-b',
    region: 'eu-central-1',
  };
  const cfg = (priority: string) =>
    validateConfig({
      ...config(dir, { window: { maxBytes: 5000 } }),
      files: { upload: { ...upload, priority } },
    });
  const cache = await openCache(cfg('after-telemetry'), nullLogger);
  t.teardown(() => cache.close());
  // The backlog is empty: the telemetry sends nothing, so files get the whole budget either way.
  const after = await new WindowRunner({
    config: cfg('after-telemetry'),
    cache,
    logger: nullLogger,
    files,
  }).run();
  t.match(after, { files: { uploaded: 1 } }, 'the window reports its files');
  const first = await new WindowRunner({
    config: cfg('before-telemetry'),
    cache,
    logger: nullLogger,
    files,
  }).run();
  t.match(first, { files: { uploaded: 1 } });
  t.same(calls, [
    { maxBytes: 5000, aborted: false },
    { maxBytes: 5000, aborted: false },
  ]);
});
