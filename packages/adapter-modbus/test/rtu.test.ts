import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createModbusAdapters } from '@attache/adapter-modbus';
import { ManualClock, type ModbusDeviceConfig } from '@attache/core';
import { openPtyPair, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { collector, observed, profileOf, step } from './fixtures/helpers.js';
import { smallCase } from './fixtures/registers.js';

const run = promisify(execFile);

function rtuDevice(id: string, path: string, unitId: number, timeoutMs: number): ModbusDeviceConfig {
  return {
    id,
    adapter: 'modbus',
    bus: { transport: 'rtu', path, baudRate: 38400, dataBits: 8, parity: 'none', stopBits: 1 },
    unitId,
    profile: 'map',
    pollIntervalMs: 1000,
    timeoutMs,
    rawFrames: false,
  };
}

t.test('RTU on a pty: a missing unit times out without stalling the other device on the line', async (t) => {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const server = await startModbusServer({
    transport: 'rtu',
    path: pty.devicePath,
    baudRate: 38400,
    units: { 1: [smallCase.server] },
  });
  t.teardown(() => server.stop());

  const { stdout } = await run('mbpoll', [
    '-m',
    'rtu',
    '-b',
    '38400',
    '-P',
    'none',
    '-a',
    '1',
    '-0',
    '-1',
    '-r',
    '0',
    '-t',
    '4:float',
    pty.gatewayPath,
  ]);
  t.match(stdout, /\[0\]:\s+54\.3/, 'mbpoll reads 54.3 (CDAB) from the server');

  const { sink, readings } = collector();
  const clock = new ManualClock();
  const adapters = createModbusAdapters({
    devices: [
      rtuDevice('fridge-1', pty.gatewayPath, 1, 10_000),
      rtuDevice('fridge-9', pty.gatewayPath, 9, 300),
    ],
    profiles: profileOf([smallCase.register]),
    sink,
    clock,
  });
  const [present, missing] = adapters;
  t.teardown(async () => {
    await present?.stop();
    await missing?.stop();
  });
  await present?.start();
  await missing?.start();
  // Both due every second: unit 9 is polled at 0, 1 and 3 s, then not before 7 s (1 + 3 polls skipped).
  await step(clock, adapters, 0);
  for (let second = 1; second < 6; second++) await step(clock, adapters, 1000);
  const one = present?.status();
  const nine = missing?.status();
  t.equal(
    readings.filter((r) => r.deviceId === 'fridge-1').length,
    6,
    'unit 1 was read at each of the 6 polls',
  );
  t.match(
    nine,
    { polls: 3, unanswered: 3, skippedPolls: 4 },
    'unit 9 is polled less often once it stopped answering',
  );
  t.equal(one?.skippedPolls, 0);
  t.equal(readings.filter((r) => r.deviceId === 'fridge-9').length, 0, 'no reading from the missing unit');
  t.equal(one?.state, 'connected');
  t.equal(one?.missedPolls, 0, 'unit 1 never missed a poll while unit 9 timed out on the same line');
  t.equal(one?.lastError, undefined, 'unit 1 had no error');
  t.equal(nine?.state, 'disconnected');
  t.equal(nine?.lastError?.code, 'ATTACHE_TIMEOUT');
  t.match(nine?.lastError?.message, /no answer within 300 ms reading holding-register 0×2 of unit 9/);
  const reading = readings.find((r) => r.deviceId === 'fridge-1');
  t.equal(reading?.protocol, 'modbus-rtu');
  t.equal(observed(reading, 'temp'), smallCase.want);
  t.same([...(reading?.raw ?? [])], [0x33, 0x33, 0x42, 0x59], 'raw: the data bytes as sent (CDAB)');
});

t.test('a silent unit is polled less often on the shared jittered back-off', async (t) => {
  // Nothing answers on the far end of the pty: every poll times out.
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const silent = { ...rtuDevice('fridge-9', pty.gatewayPath, 9, 50), pollIntervalMs: 100 };
  const { sink } = collector();
  const clock = new ManualClock();
  const adapters = createModbusAdapters({
    devices: [silent],
    profiles: profileOf([smallCase.register]),
    sink,
    jitter: 0.5,
    random: () => 0.5,
    clock,
  });
  const [adapter] = adapters;
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  // The polls skipped after each unanswered one, as they are added.
  const steps: number[] = [];
  let last = 0;
  await step(clock, adapters, 0);
  for (let interval = 1; interval <= 20 && steps.length < 3; interval++) {
    const skipped = adapter?.status().skippedPolls ?? 0;
    if (skipped !== last) steps.push(skipped - last);
    last = skipped;
    await step(clock, adapters, 100);
  }
  // Waits of 2, 4, 8 intervals, each less 25 %: 1.5 → 2, 3, 6 intervals, so 1, 2, 5 polls skipped
  // (without jitter 1, 3, 7).
  t.same(steps, [1, 2, 5]);
});
