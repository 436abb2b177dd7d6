import { encodeMllp, type MllpEvent, MllpFramer } from '@attache/hl7';
import t from 'tap';

const messages = (events: MllpEvent[]) =>
  events.flatMap((e) => (e.type === 'message' ? [e.payload.toString('latin1')] : []));

t.test('a frame fed one byte at a time comes out once, whole', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 1024 });
  const frame = encodeMllp('MSH|^~\\&|A\rPID|1');
  const events = [...frame].flatMap((byte) => framer.push(Buffer.from([byte])));
  t.same(messages(events), ['MSH|^~\\&|A\rPID|1']);
  t.equal(framer.buffered, 0, 'nothing left buffered');
});

t.test('several frames in one read, and a frame split across reads', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 1024 });
  const all = Buffer.concat([encodeMllp('one'), encodeMllp('two'), encodeMllp('three')]);
  const first = framer.push(all.subarray(0, 14));
  const second = framer.push(all.subarray(14));
  t.same(messages(first), ['one', 'two']);
  t.same(messages(second), ['three']);
});

t.test('junk before VT is discarded and counted; CR/LF between frames is not junk', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 1024 });
  const events = framer.push(
    Buffer.concat([Buffer.from([0x00, 0xff, 0x41]), encodeMllp('a'), Buffer.from('\r\n'), encodeMllp('b')]),
  );
  t.same(events, [
    { type: 'junk', bytes: 3 },
    { type: 'message', payload: Buffer.from('a') },
    { type: 'message', payload: Buffer.from('b') },
  ]);
});

t.test('a missing CR after FS is tolerated (lenient end)', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 1024 });
  const events = framer.push(Buffer.from('\x0bfirst\x1c\x0bsecond\x1c\r'));
  t.same(messages(events), ['first', 'second']);
  t.notOk(
    events.some((e) => e.type === 'junk'),
    'no junk reported',
  );
});

t.test('a VT inside a frame abandons the partial frame as junk', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 1024 });
  const events = framer.push(Buffer.from('\x0bcut off\x0bwhole\x1c\r'));
  t.same(events, [
    { type: 'junk', bytes: 7 },
    { type: 'message', payload: Buffer.from('whole') },
  ]);
});

t.test('an oversize frame is reported once, dropped, and framing resumes after its FS', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 10 });
  const events = [
    ...framer.push(Buffer.from('\x0b0123456789')),
    ...framer.push(Buffer.from('abcdef')),
    ...framer.push(Buffer.from('ghij\x1c\r\x0bok\x1c\r')),
  ];
  t.same(events, [
    { type: 'oversize', bytes: 16 },
    { type: 'message', payload: Buffer.from('ok') },
  ]);
});

t.test('the end of the stream reports a partial frame as junk', async (t) => {
  const framer = new MllpFramer({ maxMessageBytes: 100 });
  framer.push(Buffer.from('\x0bpartial'));
  t.same(framer.end(), [{ type: 'junk', bytes: 7 }]);
  t.same(framer.end(), []);
});

t.test('bad options are programmer errors', async (t) => {
  t.throws(() => new MllpFramer({ maxMessageBytes: 0 }), TypeError);
});
