import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { type DecodeSpec, decodeRegisters, ModbusClient } from '@attache/adapter-modbus';
import { isGatewayError } from '@attache/core';
import { FuzzMeter, fuzzParameters, type Mutation, mutate } from '@attache/devkit';
import fc from 'fast-check';
import t from 'tap';

// The constructed Modbus/TCP sample: a request (12 bytes) for two holding registers, its answer (13).
const sample = readFileSync(new URL('./fixtures/modbus_tcp_read_float_abcd.bin', import.meta.url));
const answer = sample.subarray(12);
const mutation = fc.tuple(fc.nat(), fc.nat(), fc.nat(255)) as fc.Arbitrary<Mutation>;

t.test('register decoding gives a finite number, text or null; it throws only as documented', async (t) => {
  const meter = new FuzzMeter('modbus decode');
  const spec = fc.record({
    type: fc.constantFrom(
      'bool',
      'bit',
      'int16',
      'uint16',
      'int32',
      'uint32',
      'float32',
      'int64',
      'uint64',
      'float64',
      'string',
    ),
    order: fc.constantFrom('ABCD', 'CDAB', 'BADC', 'DCBA'),
    bit: fc.integer({ min: 0, max: 15 }),
    scale: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(1)),
    offset: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(0)),
  }) as fc.Arbitrary<DecodeSpec>;
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 10 }), spec, (bytes, s) => {
        try {
          const value = meter.run(() => decodeRegisters(Buffer.from(bytes), s));
          return value === null || typeof value === 'string' || Number.isFinite(value);
        } catch (err) {
          // Too few bytes for the type (a caller's mistake), or a scale that overflows (marked bad).
          return err instanceof TypeError || err instanceof RangeError;
        }
      }),
      fuzzParameters(2000),
    ),
  );
  t.comment(meter.summary());
});

t.test('any answer on the wire is either two registers or refused with a GatewayError', async (t) => {
  const meter = new FuzzMeter('modbus answers');
  let next: Buffer = answer;
  const server = createServer((socket: Socket) => {
    socket.on('data', (request) => {
      // Keep the transaction id so that the answer is matched to the request.
      const reply = Buffer.from(next);
      if (reply.length >= 2) request.copy(reply, 0, 0, 2);
      socket.write(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const client = new ModbusClient({
    bus: { transport: 'tcp', host: '127.0.0.1', port },
    reconnect: { initialMs: 1, maxMs: 1 },
  });
  client.acquire();
  t.teardown(() => client.release());
  const sound = await client.read({
    unitId: 1,
    table: 'holding-register',
    address: 0,
    count: 2,
    timeoutMs: 1000,
  });
  t.same(sound.bytes, answer.subarray(9), 'the sample answer itself is read');
  const outcomes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { maxLength: 4 }), async (muts) => {
      next = mutate(answer, muts);
      const started = performance.now();
      const outcome = await client
        .read({ unitId: 1, table: 'holding-register', address: 0, count: 2, timeoutMs: 100 })
        .then((r) => (r.bytes.length === 4 ? 'two registers' : 'WRONG LENGTH'))
        .catch((err) => (isGatewayError(err) ? err.code : `not a GatewayError: ${err}`));
      meter.record(performance.now() - started);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      return outcome === 'two registers' || outcome.startsWith('ATTACHE_');
    }),
    // A mutated length makes the client wait out its timeout: at most 2,000 of these even in `make fuzz`.
    { ...fuzzParameters(40), numRuns: Math.min(2000, fuzzParameters(40).numRuns) },
  );
  t.comment(meter.summary());
  t.comment(JSON.stringify(Object.fromEntries(outcomes)));
});
