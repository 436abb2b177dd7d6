import t from 'tap';
import { type PollContent, pollContent, Reader } from '../src/index.js';

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [...u16(n >>> 16), ...u16(n & 0xffff)];
const list = (items: number[][]) => [...u16(items.length), ...u16(items.flat().length), ...items.flat()];
const ava = (id: number, value: number[]) => [...u16(id), ...u16(value.length), ...value];
const nu = (physio: number, state: number, unit: number, raw: number) => [
  ...u16(physio),
  ...u16(state),
  ...u16(unit),
  ...u32(raw),
];

/** An ActionResult carrying one context with the given observation polls. */
function result(objects: number[][]): Reader {
  const reply = [...new Array(22).fill(0), ...list([[...u16(0), ...list(objects)]])];
  return new Reader(Buffer.from([...new Array(6).fill(0), ...u16(0xf13b), ...u16(reply.length), ...reply]));
}

function content(objects: number[][]): PollContent {
  const out: PollContent = { observations: [], alarms: [] };
  pollContent(result(objects), out);
  return out;
}

t.test('measurement states make a value questionable or unavailable; unknown units are kept', async (t) => {
  const out = content([
    [
      ...u16(1),
      ...list([
        ava(0x0950, nu(0x4182, 0x4000, 0x0aa0, 70)),
        ava(0x0950, nu(0x4182, 0x0400, 0x0aa0, 71)),
        ava(0x0950, nu(0x4bb8, 0x8000, 0x0220, 90)),
        ava(0x0950, nu(0x4bb8, 0, 0x0220, 0x007fffff)),
        ava(0x0950, nu(0x5000, 0, 0x1234, 5)),
        ava(0x0924, [0, 0, 0, 1]),
      ]),
    ],
  ]);
  t.same(
    out.observations.map((o) => [o.status, o.value, o.unit]),
    [
      ['questionable', 70, '/min'],
      ['questionable', 71, '/min'],
      ['unavailable', null, '%'],
      ['unavailable', null, '%'],
      ['valid', 5, `MDC_DIM:${4 * 65536 + 0x1234}`],
    ],
  );
  t.equal(out.observations[0]?.path, 'handle:1');
});

t.test('technical and physiological alerts: priorities, text only from a string info', async (t) => {
  const text = Buffer.from('Leads Off\0', 'utf16le').swap16();
  const stringInfo = [...u16(1), ...u32(0), ...u16(0), ...u16(0), ...u16(text.length + 1), ...text, 0];
  const entry = (source: number, code: number, type: number, infoId: number, info: number[]) => [
    ...u16(source),
    ...u16(code),
    ...u16(type),
    ...u16(0),
    ...new Array(6).fill(0),
    ...u16(infoId),
    ...u16(info.length),
    ...info,
  ];
  const out = content([
    [
      ...u16(1),
      ...list([
        ava(0x0902, list([entry(0x4182, 1, 2, 0x0901, [1, 2]), entry(0x4182, 2, 1, 0x0908, stringInfo)])),
        ava(0x0904, list([entry(0x4182, 3, 1024, 0x0908, stringInfo), entry(0x4182, 4, 7, 0, [])])),
      ]),
    ],
  ]);
  t.same(
    out.alarms.map((a) => [a.kind, a.priority, a.text]),
    [
      ['physiological', 'medium', undefined],
      ['physiological', 'low', 'Leads Off'],
      ['technical', 'high', 'Leads Off'],
      ['technical', 'info', undefined],
    ],
  );
});

t.test('a length past the end of the PDU throws a RangeError, never reads beyond', async (t) => {
  const r = result([[...u16(1), ...u16(1), ...u16(200)]]);
  t.throws(() => pollContent(r, { observations: [], alarms: [] }), RangeError);
  const reader = new Reader(Buffer.from([1, 2, 3]));
  t.equal(reader.u8(), 1);
  t.equal(reader.left, 2);
  t.equal(reader.at, 1);
  t.throws(() => reader.u32(), RangeError);
});
