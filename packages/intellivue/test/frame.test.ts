import t from 'tap';
import {
  associationRequest,
  encodeFrame,
  type FrameEvent,
  fcs16,
  floatType,
  IntelliVueFramer,
  probeRequest,
  recognizes,
} from '../src/index.js';

// The framing demo of the protocol reference: a synthetic payload holding 0x7D and 0xC0.
const payload = Buffer.from('e10000020001007dc012', 'hex');
const demo = Buffer.from('c01101000ae10000020001007d5d7de0120cdac1', 'hex');

function frames(bytes: Buffer, framer = new IntelliVueFramer()): FrameEvent[] {
  const out: FrameEvent[] = [];
  framer.push(bytes, (e) => out.push(e));
  return out;
}

t.test('the reference frame: FCS 0xDA0C, escaping, and back', async (t) => {
  t.equal(fcs16(Buffer.from('1101000ae10000020001007dc012', 'hex')), 0xda0c);
  t.same(encodeFrame(payload), demo, 'what the gateway sends matches the reference bytes');
  t.same(frames(demo), [{ ok: true, pdu: payload }]);
  const out: FrameEvent[] = [];
  const framer = new IntelliVueFramer();
  for (const b of demo) framer.push(Buffer.from([b]), (e) => out.push(e));
  t.same(out, [{ ok: true, pdu: payload }], 'byte at a time');
});

t.test('a bad FCS, an abort, a wrong header or length, noise and overlong frames are refused', async (t) => {
  const bad = Buffer.from(demo);
  bad[bad.length - 2] ^= 1;
  const header = encodeFrame(payload);
  header[1] = 0x12;
  const events = frames(
    Buffer.concat([
      Buffer.from('zz'),
      bad,
      Buffer.from('c01101007dc1', 'hex'),
      header,
      Buffer.from('c0110100ff0000c1', 'hex'),
      Buffer.from('c01101c1', 'hex'),
      Buffer.from('c01101', 'hex'),
      demo,
    ]),
    new IntelliVueFramer(16),
  );
  t.same(
    events.map((e) => (e.ok ? 'ok' : e.reason)),
    [
      'bytes outside a frame',
      'bad FCS',
      'frame aborted',
      'not a Data Export frame header',
      'frame length mismatch',
      'frame too short',
      'frame cut off by a new one',
      'ok',
    ],
  );
  t.same(frames(encodeFrame(Buffer.alloc(40)), new IntelliVueFramer(16)), [
    { ok: false, reason: 'frame over 16 bytes', bytes: 46 },
  ]);
  const framer = new IntelliVueFramer();
  framer.push(Buffer.from('c01101', 'hex'), () => undefined);
  t.equal(framer.reset(), 2);
  t.equal(framer.reset(), 0);
  t.throws(() => new IntelliVueFramer(4), TypeError);
});

t.test('FLOAT-Type values and special values', async (t) => {
  t.equal(floatType(0x0000003c), 60);
  t.equal(floatType(0xff00016e), 36.6);
  t.equal(floatType(0x00fffffe), -2);
  t.equal(floatType(0x02000003), 300);
  for (const special of [0x007fffff, 0x00800000, 0x007ffffe, 0x00800002]) t.equal(floatType(special), null);
});

t.test('the association request is the 238-byte PDU its length indicator says', async (t) => {
  const aarq = associationRequest();
  t.equal(aarq.length, 238);
  t.equal(aarq[1], aarq.length - 2);
  t.ok(frames(probeRequest)[0]?.ok);
  t.ok(recognizes(encodeFrame(Buffer.from([0x0e, 0x02, 0x00, 0x00]))), 'an accept is recognized');
  t.notOk(recognizes(encodeFrame(Buffer.from([0x19, 0x00]))), 'an abort is not an answer');
  t.notOk(recognizes(Buffer.from('hello')));
});
