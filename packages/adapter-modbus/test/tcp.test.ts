import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createModbusAdapters, readRegisters } from '@attache/adapter-modbus';
import { GatewayError, isGatewayError } from '@attache/core';
import { startModbusServer } from '@attache/devkit';
import t from 'tap';
import { collector, observed, profileOf, tcpDevice, until } from './fixtures/helpers.js';
import { cases, smallCase, unmapped } from './fixtures/registers.js';

const run = promisify(execFile);

/** mbpoll's reading of holding register `address` (0-based) as a 32-bit float or int. */
async function mbpoll(
  port: number,
  address: number,
  kind: 'float' | 'int',
  bigEndianWords: boolean,
): Promise<number> {
  const args = [
    '-m',
    'tcp',
    '-p',
    String(port),
    '-0',
    '-1',
    '-r',
    String(address),
    '-c',
    '1',
    '-t',
    `4:${kind}`,
  ];
  if (bigEndianWords) args.push('-B');
  const { stdout } = await run('mbpoll', [...args, '127.0.0.1']);
  const match = /\[\d+\]:\s+(-?[\d.e+-]+)/.exec(stdout);
  // mbpoll prints floats rounded; as a float32 they are the same value.
  return kind === 'float' ? Math.fround(Number(match?.[1])) : Number(match?.[1]);
}

t.test('every type and order decodes to the value the server holds; mbpoll agrees', async (t) => {
  const all = cases();
  const server = await startModbusServer({ transport: 'tcp', units: { 1: all.map((c) => c.server) } });
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const [adapter] = createModbusAdapters({
    devices: [tcpDevice('fridge-1', server.port)],
    profiles: profileOf(all.map((c) => c.register)),
    sink,
  });
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  await until('a reading', () => readings.length > 0);
  const reading = readings[0];
  t.equal(reading?.adapter, 'modbus');
  t.equal(reading?.protocol, 'modbus-tcp');
  t.same(reading?.fields, []);
  for (const c of all) t.equal(observed(reading, c.name), c.want, `${c.name} = ${c.want}`);
  const temp = reading?.observations?.find((o) => o.source === 'temp_tenths');
  t.match(
    temp,
    { code: 'LOCAL_temp_tenths', unit: 'Cel', status: 'valid', path: 'ir:0' },
    'code, unit, path from the map',
  );
  t.equal(reading?.observations?.find((o) => o.source === 'door_open')?.path, 'hr:90#3');

  const at = (name: string) => all.find((c) => c.name === name)?.server.address ?? -1;
  t.equal(
    await mbpoll(server.port, at('float32_ABCD'), 'float', true),
    observed(reading, 'float32_ABCD'),
    'mbpoll -B: ABCD',
  );
  t.equal(
    await mbpoll(server.port, at('float32_CDAB'), 'float', false),
    observed(reading, 'float32_CDAB'),
    'mbpoll: CDAB',
  );
  t.equal(await mbpoll(server.port, at('int32_ABCD'), 'int', true), observed(reading, 'int32_ABCD'));
  t.equal(await mbpoll(server.port, at('int32_CDAB'), 'int', false), observed(reading, 'int32_CDAB'));
});

t.test('an illegal address is reported by code and name and the rest of the map still polls', async (t) => {
  const server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const [adapter] = createModbusAdapters({
    devices: [tcpDevice('gas-1', server.port)],
    profiles: profileOf([smallCase.register, unmapped]),
    sink,
  });
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  await until('two readings', () => readings.length >= 2);
  const observations = readings[1]?.observations ?? [];
  t.match(observations[0], { source: 'temp', value: smallCase.want, status: 'valid' });
  t.match(observations[1], { source: 'unmapped', value: null, status: 'unavailable', path: 'hr:500' });
  const status = adapter?.status();
  t.equal(status?.lastError?.code, 'ATTACHE_MALFORMED');
  t.match(
    status?.lastError?.message,
    /Modbus exception 2 \(ILLEGAL DATA ADDRESS\) reading holding-register 500/,
  );
  t.equal(status?.state, 'connected');
  t.equal(status?.unanswered, 0);
});

t.test('a server restarting mid-run: polls fail, then recover by themselves', async (t) => {
  let server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
  const port = server.port;
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const [adapter] = createModbusAdapters({
    devices: [tcpDevice('ups-1', port, { timeoutMs: 300 })],
    profiles: profileOf([smallCase.register]),
    sink,
    reconnect: { initialMs: 100, maxMs: 400 },
  });
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  await until('a reading', () => readings.length > 0);
  await server.stop();
  await until('the outage noticed', () => adapter?.status().state === 'disconnected');
  const before = readings.length;
  t.ok((adapter?.status().unanswered ?? 0) > 0, 'polls during the outage are unanswered');
  t.ok(['ATTACHE_PORT_NOT_OPEN', 'ATTACHE_TIMEOUT'].includes(adapter?.status().lastError?.code ?? ''));
  server = await startModbusServer({
    transport: 'tcp',
    port,
    units: { 1: [{ ...smallCase.server, value: 12.5 }] },
  });
  await until('a reading after the restart', () => readings.length > before);
  t.equal(observed(readings.at(-1), 'temp'), 12.5, 'the restarted server is read');
  t.equal(adapter?.status().state, 'connected');
});

t.test('changesOnly stores changes beyond the deadband, not every poll', async (t) => {
  const server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const [adapter] = createModbusAdapters({
    devices: [
      tcpDevice('fridge-2', server.port, {
        pollIntervalMs: 100,
        changesOnly: { deadband: 0.5, heartbeatSeconds: 3600 },
      }),
    ],
    profiles: profileOf([smallCase.register]),
    sink,
  });
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  await until('several polls', () => (adapter?.status().frames ?? 0) >= 4);
  t.equal(readings.length, 1, 'unchanged polls are not stored');
  await server.set(1, { ...smallCase.server, value: 54.6 });
  const polls = adapter?.status().frames ?? 0;
  await until('more polls', () => (adapter?.status().frames ?? 0) >= polls + 3);
  t.equal(readings.length, 1, 'a change within the deadband is not stored');
  await server.set(1, { ...smallCase.server, value: 60 });
  await until('the change stored', () => readings.length === 2);
  t.equal(observed(readings[1], 'temp'), 60);
  const s = adapter?.status();
  t.equal(
    s?.frames,
    (s?.stored ?? 0) + (s?.unchanged ?? 0),
    'every answered poll is stored or counted unchanged',
  );
});

t.test('readRegisters reads a range as the technician asks; exceptions are named', async (t) => {
  const server = await startModbusServer({ transport: 'tcp', units: { 1: cases().map((c) => c.server) } });
  t.teardown(() => server.stop());
  const bus = { transport: 'tcp' as const, host: '127.0.0.1', port: server.port };
  const at = cases().find((c) => c.name === 'int16_ABCD')?.server.address ?? -1;
  const ints = await readRegisters({
    bus,
    unitId: 1,
    table: 'holding-register',
    address: at,
    count: 2,
    type: 'int16',
  });
  t.same(ints.values, [-12345, -12345], 'two int16 in a row');
  const f = cases().find((c) => c.name === 'float32_CDAB')?.server.address ?? -1;
  const float = await readRegisters({
    bus,
    unitId: 1,
    table: 'holding-register',
    address: f,
    count: 1,
    type: 'float32',
    order: 'CDAB',
  });
  t.same(float.values, [Math.fround(54.3)], 'float32 CDAB');
  t.same(float.words, [0x3333, 0x4259], 'the words as sent');
  const coil = await readRegisters({ bus, unitId: 1, table: 'coil', address: 0, count: 1 });
  t.same(coil.values, [1]);
  const err = await readRegisters({ bus, unitId: 1, table: 'input-register', address: 900, count: 1 }).catch(
    (e) => e,
  );
  t.ok(isGatewayError(err, 'ATTACHE_MALFORMED'));
  t.match(err.message, /Modbus exception 2 \(ILLEGAL DATA ADDRESS\)/);
  t.equal(err.cause?.modbusCode, 2);
  await t.rejects(
    readRegisters({ bus, unitId: 1, table: 'coil', address: 0, count: 1, type: 'int16' }),
    TypeError,
  );
});

t.test(
  'a reading the sink refuses is counted, and under changesOnly the next poll is offered again',
  async (t) => {
    const server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
    t.teardown(() => server.stop());
    let calls = 0;
    const [adapter] = createModbusAdapters({
      devices: [
        tcpDevice('fridge-3', server.port, {
          pollIntervalMs: 100,
          changesOnly: { deadband: 1, heartbeatSeconds: 3600 },
        }),
      ],
      profiles: profileOf([smallCase.register]),
      sink: async () => {
        calls++;
        throw new GatewayError(calls === 1 ? 'ATTACHE_MALFORMED' : 'ATTACHE_CACHE_FULL', 'no room');
      },
    });
    t.teardown(() => adapter?.stop());
    await adapter?.start();
    await until('two refusals', () => (adapter?.status().refused ?? 0) >= 1);
    const s = adapter?.status();
    t.equal(s?.malformed, 1, 'the first, refused as malformed');
    t.ok((s?.refused ?? 0) >= 1, 'the next unchanged poll was offered again and refused');
    t.equal(s?.stored, 0);
    t.equal(s?.lastError?.code, 'ATTACHE_CACHE_FULL');
  },
);

t.test('createModbusAdapters refuses a device whose profile does not exist', async (t) => {
  t.throws(
    () =>
      createModbusAdapters({
        devices: [tcpDevice('x', 502, { profile: 'nope' })],
        profiles: profileOf([smallCase.register]),
        sink: async () => {},
      }),
    { code: 'ATTACHE_CONFIG_INVALID', issues: [{ path: '/devices/0/profile' }] },
  );
});

t.test(
  'a connection that drops while a request waits for its answer fails that request at once',
  async (t) => {
    // The device would answer after 30 s and the request may wait 120 s: only the drop can end it.
    const server = await startModbusServer({
      transport: 'tcp',
      delayMs: 30_000,
      units: { 1: [smallCase.server] },
    });
    t.teardown(() => server.stop());
    const bus = { transport: 'tcp' as const, host: '127.0.0.1', port: server.port };
    const read = readRegisters({
      bus,
      unitId: 1,
      table: 'holding-register',
      address: 0,
      count: 1,
      timeoutMs: 120_000,
    });
    const settled = read.catch((e: unknown) => e);
    const deadline = Date.now() + 30_000;
    while ((await server.requests()).length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await server.stop();
    const err = await settled;
    t.ok(
      isGatewayError(err, 'ATTACHE_PORT_NOT_OPEN'),
      `failed as a lost connection, not a timeout: ${String(err)}`,
    );
    t.match((err as Error).message, /failed reading/);
  },
);
