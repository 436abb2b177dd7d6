import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  checkBatch,
  checkRecord,
  GatewayError,
  isGatewayError,
  monotonicMs,
  nullLogger,
  validateConfig,
} from '@attache/core';
import t from 'tap';

const minimal = {
  version: 1,
  gateway: { id: 'gw-ward4' },
  devices: [
    {
      id: 'spo2-bed7',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB0' },
      format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
    },
  ],
};

t.test('a minimal config gets every default from the schema', async (t) => {
  const config = validateConfig(minimal);
  t.equal(config.gateway.dataDir, '/var/lib/attache');
  t.equal(config.log.level, 'info');
  const device = config.devices[0];
  if (device?.adapter !== 'rs232' || device.format.kind !== 'kv-line')
    throw new Error('not a kv-line device');
  t.same(device.port, {
    path: '/dev/ttyUSB0',
    baudRate: 9600,
    dataBits: 8,
    parity: 'none',
    stopBits: 1,
    delimiter: '\r\n',
    maxLineBytes: 4096,
    reconnectMs: 1000,
  });
  t.equal(device.format.fields.SPO2?.system, 'MDC');
  t.equal(device.rawFrames, false, 'raw frames are off unless asked for');
  t.equal(config.cache.commitIntervalMs, 0);
  t.equal(config.uplink, undefined, 'no uplink unless configured');
  t.not(config, minimal, 'the input is not modified');
  t.equal((minimal.gateway as Record<string, unknown>).dataDir, undefined);
});

t.test('uplink defaults follow AWS IoT Core quotas', async (t) => {
  const config = validateConfig({
    ...minimal,
    uplink: { endpoint: 'a.example', certFile: 'c', keyFile: 'k' },
  });
  t.equal(config.uplink?.port, 8883);
  t.equal(config.uplink?.flowControl, 'aws-iot-core');
  t.ok((config.uplink?.maxMessageBytes ?? 0) <= 128 * 1024);
  t.ok((config.uplink?.maxInFlight ?? 0) <= 100);
  t.equal(config.uplink?.topic, 'dt/attache/{gatewayId}/telemetry');
  t.same(config.uplink?.window, {
    everySeconds: 0,
    jitterSeconds: 30,
    maxDurationSeconds: 600,
    schedules: [],
    onNetworkUp: false,
    networkPollSeconds: 30,
    alwaysConnected: false,
    maxBytes: 0,
  });
  t.equal(config.uplink?.compression, 'none', 'plain JSON a dashboard can read, unless asked');
  t.equal(config.uplink?.shadowName, 'attache');
  t.equal(config.gateway.retryJitter, 0.2, 'reconnects spread by up to 20 %');
  t.same(
    config.firewall,
    { sshFrom: [], sshPort: 22 },
    'SSH closed to the network unless a management network is set',
  );
  for (const entry of ['10.0.0.0/33', '999.1.1.1', 'abc', 'fd00::/129']) {
    t.throws(
      () => validateConfig({ ...minimal, firewall: { sshFrom: [entry] } }),
      { code: 'ATTACHE_CONFIG_INVALID', issues: [{ path: '/firewall/sshFrom/0' }] },
      `${entry} is no address or range`,
    );
  }
  t.doesNotThrow(() =>
    validateConfig({ ...minimal, firewall: { sshFrom: ['10.50.0.0/24', 'fd00:50::/64'] } }),
  );
});

t.test('every problem in an invalid config is listed with its path', async (t) => {
  const bad = {
    version: 2,
    gateway: { id: 'has space', colour: 'red' },
    devices: [
      {
        id: 'd1',
        adapter: 'rs232',
        port: { path: '/dev/x', baudRate: 9601, parity: 'weird' },
        format: { kind: 'kv-line', fields: {} },
      },
    ],
  };
  const err = t.throws(() => validateConfig(bad)) as GatewayError;
  t.ok(isGatewayError(err, 'ATTACHE_CONFIG_INVALID'));
  const paths = err.issues.map((i) => i.path).sort();
  t.same(paths, [
    '/devices/0/format/fields',
    '/devices/0/port/baudRate',
    '/devices/0/port/parity',
    '/gateway/colour',
    '/gateway/id',
    '/version',
  ]);
  t.match(
    err.issues.find((i) => i.path === '/devices/0/port/parity')?.message,
    /must be one of "none", "even"/,
  );
  t.match(err.issues.find((i) => i.path === '/gateway/colour')?.message, /not a known setting/);
});

t.test('a missing required section is reported at its own path', async (t) => {
  const err = t.throws(() => validateConfig({ version: 1 })) as GatewayError;
  t.same(err.issues.map((i) => i.path).sort(), ['/devices', '/gateway']);
  t.match(err.issues[0]?.message, 'is required');
});

const record = {
  gatewayId: 'gw-ward4',
  deviceId: 'spo2-bed7',
  adapter: 'rs232',
  protocol: 'kv-line',
  seq: 1,
  capturedAt: '2026-11-24T03:00:00.000Z',
  clock: { synchronized: true, bootId: '0b5f9d3e-1c2a-4f7e-9a3b-2c1d0e9f8a7b', monotonicMs: 1234.5 },
  observations: [{ code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 97, unit: '%', status: 'valid' }],
};

t.test('records and batches are checked against the published schemas', async (t) => {
  t.same(checkRecord(record), []);
  t.same(
    checkBatch({
      schemaVersion: 1,
      gatewayId: 'gw-ward4',
      firstSeq: 1,
      lastSeq: 1,
      count: 1,
      sentAt: record.capturedAt,
      records: [record],
    }),
    [],
  );
  t.match(checkRecord({ ...record, seq: 0 }), [{ path: '/seq' }]);
  t.match(checkRecord({ ...record, patientName: 'DOE^JOHN' }), [
    { path: '/patientName', message: /not a known/ },
  ]);
  t.match(checkRecord({ ...record, capturedAt: 'yesterday' }), [{ path: '/capturedAt' }]);
  t.match(
    checkBatch({
      schemaVersion: 2,
      gatewayId: 'g',
      firstSeq: 1,
      lastSeq: 1,
      count: 1,
      sentAt: record.capturedAt,
      records: [record],
    }),
    [{ path: '/schemaVersion' }],
  );
});

t.test('GatewayError keeps its code and cause', async (t) => {
  const cause = new Error('EIO');
  const err = new GatewayError('ATTACHE_CACHE_WRITE', 'write failed', { cause });
  t.equal(err.code, 'ATTACHE_CACHE_WRITE');
  t.equal(err.cause, cause);
  t.equal(err.name, 'GatewayError');
  t.notOk(isGatewayError(new Error('x')));
  t.notOk(isGatewayError(err, 'ATTACHE_TIMEOUT'));
});

t.test('monotonicMs only moves forward', async (t) => {
  const a = monotonicMs();
  await new Promise((r) => setTimeout(r, 5));
  const b = monotonicMs();
  t.ok(a > 0 && b - a >= 4, 'at least the time slept has passed');
});

t.test('nullLogger accepts every call and stays silent', async (t) => {
  const log = nullLogger.child({ module: 'x' });
  log.info({ a: 1 }, 'hello');
  log.error('boom');
  log.fatal('f');
  log.warn('w');
  log.debug('d');
  log.trace('t');
  t.equal(log.isLevelEnabled('debug'), false);
});

// In a process of its own, without tap's hooks: its coverage (which it adds to every child's
// NODE_OPTIONS) keeps every function V8 compiled, and with it the validator's code and source, alive.
const afterGc = `
import { validateConfig } from '@attache/core';
const minimal = ${JSON.stringify(minimal)};
const first = validateConfig(minimal).log.level;
gc();
const held = process.memoryUsage().heapUsed;
// A WeakRef's target lives until the current job ends.
await new Promise((resolve) => setImmediate(resolve));
gc();
const released = held - process.memoryUsage().heapUsed;
let refused = '';
try { validateConfig({ ...minimal, version: 2 }); } catch (err) { refused = err.code; }
console.log(JSON.stringify({ first, released, reloaded: validateConfig(minimal).gateway.dataDir, refused }));
`;

t.test(
  'the config validator is let go after a validation, and validates as before when needed again',
  async (t) => {
    const { stdout } = await promisify(execFile)(
      'env',
      [
        '-u',
        'NODE_OPTIONS',
        '-u',
        'NODE_V8_COVERAGE',
        process.execPath,
        '--expose-gc',
        '--input-type=module',
        '-e',
        afterGc,
      ],
      { cwd: fileURLToPath(new URL('../../..', import.meta.url)) },
    );
    const result = JSON.parse(stdout) as {
      first: string;
      released: number;
      reloaded: string;
      refused: string;
    };
    t.equal(result.first, 'info');
    t.ok(
      result.released > 200_000,
      `the validator's source and code are collected (${result.released} bytes)`,
    );
    t.equal(result.reloaded, '/var/lib/attache', 'defaults after a reload');
    t.equal(result.refused, 'ATTACHE_CONFIG_INVALID', 'an invalid config refused after a reload');
  },
);
