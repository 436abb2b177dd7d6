import {
  type ByteOrder,
  decodeRegisters,
  type RegisterType,
  reorder,
  resolveRef,
} from '@attache/adapter-modbus';
import t from 'tap';

const orders: ByteOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

/** Big-endian bytes of a value, written with Node's Buffer (the reference encoder). */
function bigEndian(type: RegisterType, value: number | bigint): Buffer {
  const b = Buffer.alloc(type.endsWith('64') ? 8 : type.endsWith('32') ? 4 : 2);
  if (type === 'int16') b.writeInt16BE(value as number);
  if (type === 'uint16') b.writeUInt16BE(value as number);
  if (type === 'int32') b.writeInt32BE(value as number);
  if (type === 'uint32') b.writeUInt32BE(value as number);
  if (type === 'float32') b.writeFloatBE(value as number);
  if (type === 'int64') b.writeBigInt64BE(value as bigint);
  if (type === 'uint64') b.writeBigUInt64BE(value as bigint);
  if (type === 'float64') b.writeDoubleBE(value as number);
  return b;
}

/** The bytes a device with `order` sends, spelled out by letter: A is the most significant byte. */
function asSent(be: Buffer, order: ByteOrder): Buffer {
  const words: number[][] = [];
  for (let i = 0; i < be.length; i += 2) words.push([be[i] ?? 0, be[i + 1] ?? 0]);
  if (order === 'CDAB' || order === 'DCBA') words.reverse();
  return Buffer.from(
    words.flatMap(([hi, lo]) => (order === 'BADC' || order === 'DCBA' ? [lo, hi] : [hi, lo])),
  );
}

t.test('the documented example: 54.3 in each order is the documented byte sequence', async (t) => {
  const sent: Record<ByteOrder, string> = {
    ABCD: '42593333',
    CDAB: '33334259',
    BADC: '59423333',
    DCBA: '33335942',
  };
  for (const order of orders) {
    const bytes = Buffer.from(sent[order], 'hex');
    const value = decodeRegisters(bytes, { type: 'float32', order }) as number;
    t.equal(Math.fround(value), Math.fround(54.3), `${order} ${sent[order]} → 54.3`);
    t.equal(reorder(bytes, order).toString('hex'), '42593333', `${order} reorders to ABCD`);
  }
});

t.test('every numeric type in every order decodes to the value encoded', async (t) => {
  const cases: [RegisterType, number | bigint, number | string][] = [
    ['int16', -12345, -12345],
    ['uint16', 54321, 54321],
    ['int32', -123456789, -123456789],
    ['uint32', 4000000000, 4000000000],
    ['float32', -40.5, -40.5],
    ['int64', -1234567890123n, -1234567890123],
    ['uint64', 9007199254740991n, 9007199254740991],
    ['uint64', 18446744073709551615n, '18446744073709551615'],
    ['int64', -9223372036854775808n, '-9223372036854775808'],
    ['float64', -273.15e-3, -273.15e-3],
  ];
  for (const [type, value, want] of cases) {
    for (const order of orders) {
      const got = decodeRegisters(asSent(bigEndian(type, value), order), { type, order });
      t.equal(got, want, `${type} ${order} ${value}`);
    }
  }
});

t.test('one-register types: BADC and DCBA swap the two bytes, CDAB does not', async (t) => {
  const bytes = Buffer.from([0x01, 0x02]);
  t.equal(decodeRegisters(bytes, { type: 'uint16', order: 'ABCD' }), 0x0102);
  t.equal(decodeRegisters(bytes, { type: 'uint16', order: 'CDAB' }), 0x0102);
  t.equal(decodeRegisters(bytes, { type: 'uint16', order: 'BADC' }), 0x0201);
  t.equal(decodeRegisters(bytes, { type: 'uint16', order: 'DCBA' }), 0x0201);
});

t.test('scale and offset: raw × scale + offset; 64-bit beyond 2^53 becomes the nearest double', async (t) => {
  const raw = (n: number) => bigEndian('int16', n);
  t.equal(decodeRegisters(raw(-215), { type: 'int16', scale: 0.1 }), -21.5, 'signed tenths: -21.5 °C');
  t.equal(decodeRegisters(raw(5000), { type: 'int16', scale: 0.01, offset: -10 }), 40);
  t.equal(
    decodeRegisters(bigEndian('uint16', 10000), { type: 'uint16', scale: 0.01 }),
    100,
    '0–10000 = 0–100 bar',
  );
  const big = bigEndian('uint64', 2n ** 60n);
  t.equal(decodeRegisters(big, { type: 'uint64', scale: 2 }), 2 ** 61);
  t.equal(decodeRegisters(big, { type: 'uint64' }), '1152921504606846976', 'unscaled: the exact text');
});

t.test('NaN and infinities give null (no sensor); a short buffer is a TypeError', async (t) => {
  t.equal(decodeRegisters(bigEndian('float32', Number.NaN), { type: 'float32' }), null);
  t.equal(decodeRegisters(bigEndian('float64', Number.POSITIVE_INFINITY), { type: 'float64' }), null);
  t.throws(() => decodeRegisters(Buffer.alloc(2), { type: 'float32' }), TypeError);
  t.throws(() => reorder(Buffer.alloc(3), 'ABCD'), TypeError);
});

t.test('bits of a status word, and strings in both byte orders', async (t) => {
  const word = bigEndian('uint16', 0b1000_0000_0000_0101);
  t.same(
    [0, 1, 2, 15].map((bit) => decodeRegisters(word, { type: 'bit', bit })),
    [1, 0, 1, 1],
  );
  t.equal(
    decodeRegisters(Buffer.from([0x05, 0x80]), { type: 'bit', bit: 15, order: 'BADC' }),
    1,
    'bit after byte swap',
  );
  t.equal(decodeRegisters(Buffer.from('FRIDGE-2\0\0'), { type: 'string' }), 'FRIDGE-2', 'cut at NUL');
  t.equal(
    decodeRegisters(Buffer.from('RFDIEG2-  '), { type: 'string', order: 'BADC' }),
    'FRIDGE-2',
    'low byte first',
  );
  t.equal(
    decodeRegisters(Buffer.from('AB  '), { type: 'string', order: 'CDAB' }),
    'AB',
    'CDAB keeps character order',
  );
  t.equal(decodeRegisters(Buffer.from([0, 0]), { type: 'bool' }), 0);
});

t.test('1-based references: the first digit is the table, 40001 is holding register 0', async (t) => {
  t.same(resolveRef('40001'), { table: 'holding-register', address: 0 });
  t.same(resolveRef('30010'), { table: 'input-register', address: 9 });
  t.same(resolveRef('00001'), { table: 'coil', address: 0 });
  t.same(resolveRef('10005'), { table: 'discrete-input', address: 4 });
  t.same(resolveRef('465536'), { table: 'holding-register', address: 65535 });
  t.equal(resolveRef('40000'), undefined, 'numbered 0');
  t.equal(resolveRef('20001'), undefined, 'no table 2');
  t.equal(resolveRef('4001'), undefined, 'too short');
});
