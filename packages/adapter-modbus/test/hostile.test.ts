import { createServer, type Server, type Socket } from 'node:net';
import { createModbusAdapters } from '@attache/adapter-modbus';
import type { ModbusRegister } from '@attache/core';
import { recordingLogger, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { collector, observed, profileOf, tcpDevice, until } from './fixtures/helpers.js';
import { smallCase } from './fixtures/registers.js';

type Entry = Parameters<typeof recordingLogger>[0][number];

/**
 * A Modbus TCP device that answers every read of holding registers with a frame of the right
 * length whose byte count field says `byteCount(count)` instead of 2 × count.
 */
async function lyingDevice(byteCount: (count: number) => number): Promise<{ port: number; server: Server }> {
  const server = createServer((socket: Socket) => {
    socket.on('data', (request) => {
      const count = request.readUInt16BE(10);
      const pdu = Buffer.alloc(2 + 2 * count);
      pdu[0] = request[7] ?? 3;
      pdu[1] = byteCount(count) & 0xff;
      for (let i = 0; i < count; i++) pdu.writeUInt16BE(100 + i, 2 + 2 * i);
      const header = Buffer.alloc(7);
      request.copy(header, 0, 0, 4);
      header.writeUInt16BE(pdu.length + 1, 4);
      header[6] = request[6] ?? 1;
      socket.write(Buffer.concat([header, pdu]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, server };
}

const twoRegisters: ModbusRegister[] = [
  { name: 'a', type: 'uint16', table: 'holding-register', address: 0, code: 'A', system: 'LOCAL', unit: '1' },
  { name: 'b', type: 'uint16', table: 'holding-register', address: 1, code: 'B', system: 'LOCAL', unit: '1' },
] as ModbusRegister[];

for (const [what, byteCount] of [
  ['fewer', (count: number) => 2 * count - 2],
  ['more', (count: number) => 2 * count + 2],
  ['far more', () => 250],
] as const) {
  t.test(`an answer whose byte count says ${what} bytes than asked for is refused and counted`, async (t) => {
    const { port, server } = await lyingDevice(byteCount);
    t.teardown(() => server.close());
    const { sink, readings } = collector();
    const entries: Entry[] = [];
    const [adapter] = createModbusAdapters({
      devices: [tcpDevice('liar-1', port)],
      profiles: profileOf(twoRegisters),
      sink,
      logger: recordingLogger(entries),
    });
    t.teardown(() => adapter?.stop());
    await adapter?.start();
    await until('two refused answers', () => (adapter?.status().badAnswers ?? 0) >= 2);
    t.equal(adapter?.status().lastError?.code, 'ATTACHE_MALFORMED');
    // The library itself trips over a count past the frame's end; a count within it is ours to check.
    t.match(adapter?.status().lastError?.message, /(holds \d+ bytes, 4 expected|bad answer)/);
    t.match(adapter?.status().lastError?.message, /holding-register 0×2 of unit 1/);
    t.equal(adapter?.status().unanswered, 0, 'the device answered: no reconnect, no back-off');
    t.same(
      readings.flatMap((reading) => reading.observations?.map((o) => [o.value, o.status]) ?? []),
      readings.flatMap(() => [
        [null, 'unavailable'],
        [null, 'unavailable'],
      ]),
      'no value is decoded from a shifted answer',
    );
    t.ok(
      entries.some((e) => e.msg === 'read failed'),
      'logged',
    );
  });
}

t.test('a scale that makes one value infinite marks that value, the others are stored', async (t) => {
  const server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const entries: Entry[] = [];
  const huge = { ...smallCase.register, name: 'huge', scale: 1e308 } as ModbusRegister;
  const shifted = { ...smallCase.register, name: 'shifted', offset: -1e308, scale: 1e308 } as ModbusRegister;
  const [adapter] = createModbusAdapters({
    devices: [tcpDevice('fridge-2', server.port)],
    profiles: profileOf([huge, smallCase.register, shifted]),
    sink,
    logger: recordingLogger(entries),
  });
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  await until('two readings', () => readings.length >= 2);
  const reading = readings[1];
  t.equal(observed(reading, 'temp'), smallCase.want, 'the other register of the poll is kept');
  t.match(
    reading?.observations?.find((o) => o.source === 'huge'),
    { value: null, status: 'unavailable' },
  );
  t.match(
    reading?.observations?.find((o) => o.source === 'shifted'),
    { value: null, status: 'unavailable' },
  );
  const status = adapter?.status();
  t.ok((status?.outOfRange ?? 0) >= 4, 'counted on every poll');
  t.equal(status?.malformed, 0, 'no reading refused');
  const logged = entries.filter((e) => e.msg?.startsWith('scale and offset make the value non-finite'));
  t.same(
    logged.map((e) => e.register),
    ['huge', 'shifted'],
    'logged once per register',
  );
});
