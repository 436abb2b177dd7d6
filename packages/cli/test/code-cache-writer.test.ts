// The Modbus TCP server `attache --write-code-cache` reads from for the `modbus` profile's cache
// (code-cache-writer.ts): a read of holding or input registers is answered with zeros, anything
// else with exception 1, a request split over packets or two in one packet alike.

import { once } from 'node:events';
import { type AddressInfo, connect } from 'node:net';
import t from 'tap';
import { registerServer } from '../dist/code-cache-writer.js';

/** A Modbus TCP request: MBAP header (transaction, protocol 0, length, unit) and the PDU. */
function request(transaction: number, unit: number, pdu: number[]): Buffer {
  const frame = Buffer.alloc(7 + pdu.length);
  frame.writeUInt16BE(transaction, 0);
  frame.writeUInt16BE(pdu.length + 1, 4);
  frame[6] = unit;
  Buffer.from(pdu).copy(frame, 7);
  return frame;
}

t.test('answers register reads with zeros and anything else with exception 1', async (t) => {
  const server = await registerServer();
  t.teardown(() => server.close());
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const answers: Buffer[] = [];
  socket.on('data', (chunk) => answers.push(chunk));
  const read = request(7, 1, [3, 0, 0, 0, 2]);
  socket.write(read.subarray(0, 5));
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.write(
    Buffer.concat([read.subarray(5), request(8, 2, [4, 0, 10, 0, 1]), request(9, 1, [6, 0, 0, 0, 1])]),
  );
  const expected = Buffer.concat([
    Buffer.from([0, 7, 0, 0, 0, 7, 1, 3, 4, 0, 0, 0, 0]),
    Buffer.from([0, 8, 0, 0, 0, 5, 2, 4, 2, 0, 0]),
    Buffer.from([0, 9, 0, 0, 0, 3, 1, 0x86, 1]),
  ]);
  while (Buffer.concat(answers).length < expected.length) await once(socket, 'data');
  t.same([...Buffer.concat(answers)], [...expected], 'two reads answered, a write refused, in order');
});
