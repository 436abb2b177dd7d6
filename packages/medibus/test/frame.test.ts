import t from 'tap';
import { checksum, encodeCommand, encodeReply, type FrameEvent, MedibusFramer } from '../src/index.js';

// The constructed exchange of the protocol reference (ICC, its reply, a CP1 request and its reply, NOP).
const exchange = Buffer.from(
  '1b5136430d015135320d1b2433460d0124374420203235373320203132373820' +
    '202035383820353230423820372e33443620203134463020203430454' +
    '10d1b3034420d013033310d',
  'hex',
);

function frames(bytes: Buffer, framer = new MedibusFramer()): FrameEvent[] {
  const out: FrameEvent[] = [];
  framer.push(bytes, (e) => out.push(e));
  return out;
}

t.test('the reference exchange frames into six messages with good checksums', async (t) => {
  const events = frames(exchange);
  t.equal(events.length, 6);
  t.ok(events.every((e) => e.ok));
  const messages = events.flatMap((e) => (e.ok ? [e.message] : []));
  t.same(
    messages.map((m) => [m.kind, String.fromCharCode(m.command)]),
    [
      ['command', 'Q'],
      ['reply', 'Q'],
      ['command', '$'],
      ['reply', '$'],
      ['command', '0'],
      ['reply', '0'],
    ],
  );
  t.equal(messages[3]?.data.toString('latin1'), '7D  2573  1278   588 520B8 7.3D6  14F0  40');
});

t.test('what the gateway sends matches the reference bytes', async (t) => {
  t.same(encodeCommand(0x51), Buffer.from('\x1bQ6C\r', 'latin1'));
  t.same(encodeCommand(0x24), Buffer.from('\x1b$3F\r', 'latin1'));
  t.same(encodeReply(0x30), Buffer.from('\x01031\r', 'latin1'));
  t.equal(checksum(Buffer.from('\x01Q', 'latin1')), '52');
});

t.test('byte at a time gives the same messages as one chunk', async (t) => {
  const framer = new MedibusFramer();
  const out: FrameEvent[] = [];
  for (const b of exchange) framer.push(Buffer.from([b]), (e) => out.push(e));
  t.same(out, frames(exchange));
});

t.test('a checksum off by one, in either direction of the exchange, is refused', async (t) => {
  const badReply = Buffer.from('\x01Q53\r', 'latin1');
  const badCommand = Buffer.from('\x1bQ6D\r', 'latin1');
  t.same(frames(badReply), [{ ok: false, reason: 'bad checksum', bytes: 4 }]);
  t.same(frames(badCommand), [{ ok: false, reason: 'bad checksum', bytes: 4 }]);
  t.ok(frames(Buffer.from('\x1bQ6c\r', 'latin1'))[0]?.ok, 'lower-case hex is accepted');
});

t.test('noise, cut-off, short and overlong messages are refused without stalling', async (t) => {
  const framer = new MedibusFramer(16);
  const events = frames(
    Buffer.concat([
      Buffer.from('garbage'),
      Buffer.from('\x01$7D', 'latin1'),
      Buffer.from('\x01Q\r', 'latin1'),
      Buffer.from(`\x01$${'9'.repeat(40)}\r`, 'latin1'),
      encodeReply(0x51),
    ]),
    framer,
  );
  t.same(
    events.map((e) => (e.ok ? 'ok' : e.reason)),
    [
      'bytes outside a message',
      'message cut off by a new one',
      'message too short',
      'message over 16 bytes',
      'ok',
    ],
  );
  framer.push(Buffer.from('\x01$12'), () => undefined);
  t.equal(framer.reset(), 4, 'a message cut off by the link closing is reported');
  t.equal(framer.reset(), 0);
  t.throws(() => new MedibusFramer(4), TypeError);
});

t.test('a megabyte without CR costs one pass and keeps at most maxBytes', async (t) => {
  const big = Buffer.alloc(1 << 20, 0x41);
  big[0] = 0x01;
  const out = frames(Buffer.concat([big, Buffer.from('\r')]));
  t.same(out, [{ ok: false, reason: 'message over 4096 bytes', bytes: 1 << 20 }]);
});
