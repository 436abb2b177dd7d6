import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { checkBatch } from '@attache/core';
import { type ModbusServer, openPtyPair, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { attache, recordsOf, Stack } from './helpers/stack.js';

const values = [
  { table: 'ir' as const, address: 0, type: 'int16' as const, value: -215 },
  { table: 'hr' as const, address: 0, type: 'float32' as const, order: 'CDAB' as const, value: 54.3 },
  { table: 'hr' as const, address: 2, type: 'uint16' as const, value: 0 },
];

const profile = {
  description: 'lab fridge (test map)',
  registers: [
    {
      name: 'cabinet_temp',
      ref: '30001',
      type: 'int16',
      scale: 0.1,
      code: 'LOCAL_CABINET_TEMP',
      unit: 'Cel',
    },
    {
      name: 'setpoint',
      table: 'holding-register',
      address: 0,
      type: 'float32',
      order: 'CDAB',
      code: 'LOCAL_SETPOINT',
      unit: 'Cel',
    },
    {
      name: 'alarms',
      ref: '40003',
      type: 'uint16',
      code: 'LOCAL_ALARMS',
      unit: '1',
      questionableWhenNonZero: true,
    },
  ],
};

function modbusConfig(stack: Stack, server: ModbusServer, registers: unknown[] = profile.registers) {
  return {
    ...stack.config(),
    devices: [
      {
        id: 'fridge-lab2',
        adapter: 'modbus',
        bus: { transport: 'tcp', host: '127.0.0.1', port: server.port },
        profile: 'lab-fridge',
        pollIntervalMs: 200,
        timeoutMs: 500,
      },
    ],
    modbusProfiles: { 'lab-fridge': { ...profile, registers } },
  };
}

t.test('polled registers reach the cache and the broker as records', async (t) => {
  const stack = await Stack.start(t);
  const server = await startModbusServer({ transport: 'tcp', units: { 1: values } });
  t.teardown(() => server.stop());
  await stack.writeConfig(modbusConfig(stack, server));
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const dashboard = await stack.subscribe();
  const status = await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 3);
  t.match(status.adapters[0], { deviceId: 'fridge-lab2', state: 'connected', malformed: 0, refused: 0 });
  await server.set(1, { table: 'hr', address: 2, type: 'uint16', value: 4 });
  await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 8);

  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, 'sync drains the backlog');
  const window = JSON.parse(sync.stdout);
  const messages = await dashboard.waitFor(window.messages, 30_000);
  t.same(
    messages.map((m) => checkBatch(JSON.parse(m.toString('utf8')))),
    messages.map(() => []),
    'batches match the schema (each message)',
  );
  const records = recordsOf(messages);
  t.ok(records.length >= 8);
  const first = records[0] as {
    adapter: string;
    protocol: string;
    deviceId: string;
    observations: unknown[];
  };
  t.match(first, { adapter: 'modbus', protocol: 'modbus-tcp', deviceId: 'fridge-lab2' });
  t.match(first.observations, [
    {
      code: 'LOCAL_CABINET_TEMP',
      value: -21.5,
      unit: 'Cel',
      status: 'valid',
      source: 'cabinet_temp',
      path: 'ir:0',
    },
    { code: 'LOCAL_SETPOINT', value: Math.fround(54.3), unit: 'Cel', status: 'valid', path: 'hr:0' },
    { code: 'LOCAL_ALARMS', value: 0, status: 'valid' },
  ]);
  const last = records.at(-1) as { observations: { status: string; value: unknown }[] };
  t.match(
    last.observations,
    [{ status: 'questionable' }, { status: 'questionable' }, { value: 4, status: 'valid' }],
    'an alarm word marks the other values questionable',
  );
  t.notOk('raw' in first, 'no raw frame without rawFrames');
});

t.test('a bad register map is refused with its path: attache run exits 78', async (t) => {
  const stack = await Stack.start(t);
  const server = await startModbusServer({ transport: 'tcp', units: { 1: values } });
  t.teardown(() => server.stop());
  const bad = [
    { name: 'x', ref: '40000', type: 'uint16', code: 'X', unit: '1' },
    { name: 'y', ref: '00001', type: 'float32', code: 'Y', unit: '1' },
  ];
  await stack.writeConfig(modbusConfig(stack, server, bad));
  const result = await attache(['run', '--config', stack.configPath]);
  t.equal(result.code, 78, 'EX_CONFIG');
  // Refused while loading the config, like any invalid config: one `path: message` line each.
  t.match(result.stderr, '/modbusProfiles/lab-fridge/registers/0/ref');
  t.match(result.stderr, '/modbusProfiles/lab-fridge/registers/1/type');
  const validate = await attache(['config', 'validate', '--config', stack.configPath]);
  t.equal(validate.code, 78, 'attache config validate refuses it too');
  t.match(validate.stderr, '/modbusProfiles/lab-fridge/registers/0/ref');
});

t.test('attache modbus read prints the decoded values for the technician', async (t) => {
  const server = await startModbusServer({ transport: 'tcp', units: { 1: values } });
  t.teardown(() => server.stop());
  const bus = `tcp://127.0.0.1:${server.port}`;
  const text = await attache([
    'modbus',
    'read',
    '--bus',
    bus,
    '--ref',
    '40001',
    '--type',
    'float32',
    '--order',
    'CDAB',
  ]);
  t.equal(text.code, 0);
  t.match(text.stdout, /^hr:0\tfloat32 CDAB\t54\.3\t\(0x3333 0x4259\)/);
  const json = await attache([
    'modbus',
    'read',
    '--bus',
    bus,
    '--table',
    'input',
    '--address',
    '0',
    '--type',
    'int16',
    '--json',
  ]);
  t.same(JSON.parse(json.stdout), [
    { path: 'ir:0', type: 'int16', order: 'ABCD', value: -215, words: [0xff29] },
  ]);
  const missing = await attache(['modbus', 'read', '--bus', bus, '--ref', '40200']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, 'ATTACHE_MALFORMED: Modbus exception 2 (ILLEGAL DATA ADDRESS)');
});

t.test('attache modbus read over RTU on a serial line, and the mistakes a technician makes', async (t) => {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const server = await startModbusServer({
    transport: 'rtu',
    path: pty.devicePath,
    baudRate: 19200,
    units: { 1: values },
  });
  t.teardown(() => server.stop());
  const json = await attache([
    'modbus',
    'read',
    '--bus',
    pty.gatewayPath,
    '--baud',
    '19200',
    '--parity',
    'none',
    '--stop-bits',
    '2',
    '--table',
    'input',
    '--address',
    '0',
    '--type',
    'int16',
    '--json',
  ]);
  t.equal(json.code, 0, json.stderr);
  t.same(JSON.parse(json.stdout), [
    { path: 'ir:0', type: 'int16', order: 'ABCD', value: -215, words: [0xff29] },
  ]);
  const noLocation = await attache(['modbus', 'read', '--bus', pty.gatewayPath, '--type', 'int16']);
  t.equal(noLocation.code, 1);
  t.match(noLocation.stderr, 'give --ref, or --table and --address');
  const badRef = await attache(['modbus', 'read', '--bus', pty.gatewayPath, '--ref', '2']);
  t.equal(badRef.code, 1);
  t.match(badRef.stderr, '--ref 2 is not a 1-based reference like 40001');

  // Every mistake at once, before anything is opened.
  const mistakes = await attache([
    'modbus',
    'read',
    '--bus',
    '10.0.0.5:502',
    '--unit',
    '0',
    '--ref',
    '40001',
    '--table',
    'holding',
    '--type',
    'string',
  ]);
  t.equal(mistakes.code, 1);
  t.same(mistakes.stderr.trim().split('\n'), [
    'attache: --bus 10.0.0.5:502 looks like a TCP address: write tcp://10.0.0.5:502',
    'attache: --unit 0 must be a whole number from 1 to 247 (0 is broadcast: no device answers a read)',
    'attache: give either --ref or --table with --address, not both',
    'attache: --type string needs --length: how many registers (2 characters each) one string takes',
  ]);
  const unit248 = await attache([
    'modbus',
    'read',
    '--bus',
    pty.gatewayPath,
    '--unit',
    '248',
    '--ref',
    '30001',
  ]);
  t.match(unit248.stderr, '--unit 248 must be a whole number from 1 to 247');
  const halfTable = await attache(['modbus', 'read', '--bus', pty.gatewayPath, '--table', 'input']);
  t.match(halfTable.stderr, '--table needs --address');
  const relative = await attache(['modbus', 'read', '--bus', 'ttyUSB0', '--ref', '30001']);
  t.match(relative.stderr, '--bus ttyUSB0 is neither tcp://host[:port] nor a serial device path');
});

t.test('attache modbus read names why it could not connect', async (t) => {
  // A port that was free a moment ago: nothing listens there.
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const cases: [string, string][] = [
    [`tcp://127.0.0.1:${closed}`, 'connection refused: nothing listens on that port'],
    ['tcp://no-such-host.invalid:502', 'unknown host: the name does not resolve'],
    ['/dev/ttyUSB-attache-none', 'no such device (is the adapter plugged in?'],
  ];
  for (const [bus, reason] of cases) {
    const result = await attache(['modbus', 'read', '--bus', bus, '--ref', '40001']);
    t.equal(result.code, 1, bus);
    t.match(result.stderr, `ATTACHE_PORT_NOT_OPEN: cannot connect to `);
    t.match(result.stderr, reason, `${bus}: ${reason}`);
  }
});
