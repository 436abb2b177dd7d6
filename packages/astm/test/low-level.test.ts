import { type AstmAction, AstmReceiver } from '@attache/astm';
import t from 'tap';

/** The constructed ASTM host-query sample (astm_host_query_constructed.bin), byte for byte. */
const SAMPLE = Buffer.from(
  '\x05\x021H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627135000\r\x0394\r\n' +
    '\x022Q|1|^^SMP0001||^^^ALL||||||||O\r\x0343\r\n\x023L|1|N\r\x0306\r\n\x04',
  'latin1',
);
const ACK = Buffer.from([0x06]);
const NAK = Buffer.from([0x15]);
const ENQ = Buffer.from([0x05]);
const EOT = Buffer.from([0x04]);

/** One frame `STX FN text end C1 C2 trailer`, with a correct checksum unless `checksum` is given. */
function frame(
  fn: number,
  text: string,
  end: 'ETX' | 'ETB' = 'ETX',
  checksum?: string,
  trailer = '\r\n',
): Buffer {
  const body = `${fn}${text}${end === 'ETX' ? '\x03' : '\x17'}`;
  let sum = 0;
  for (const ch of body) sum += ch.charCodeAt(0);
  const c = checksum ?? (sum % 256).toString(16).toUpperCase().padStart(2, '0');
  return Buffer.from(`\x02${body}${c}${trailer}`, 'latin1');
}

function sent(actions: AstmAction[]): Buffer {
  return Buffer.concat(actions.flatMap((a) => (a.type === 'send' ? [a.bytes] : [])));
}
function messages(actions: AstmAction[]) {
  return actions.flatMap((a) => (a.type === 'message' ? [a] : []));
}
function events(actions: AstmAction[]): string[] {
  return actions.flatMap((a) => (a.type === 'event' ? [a.reason ? `${a.event}: ${a.reason}` : a.event] : []));
}

/** A receiver with a fake clock at 0, already past ENQ. */
function started(): AstmReceiver {
  const receiver = new AstmReceiver({ now: () => 0 });
  receiver.feed(ENQ);
  return receiver;
}

t.test('the sample: ACK for ENQ and each frame, the L frame waits for the store', (t) => {
  const receiver = new AstmReceiver({ now: () => 0 });
  const first = receiver.feed(SAMPLE);
  t.same(sent(first), Buffer.from([0x06, 0x06, 0x06]), 'ENQ, H and Q frames ACKed; L frame held');
  t.equal(receiver.state, 'awaiting-store');
  const [message] = messages(first);
  t.same(message?.records, [
    'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627135000',
    'Q|1|^^SMP0001||^^^ALL||||||||O',
    'L|1|N',
  ]);
  t.equal(message?.awaitingStore, true);
  t.equal(message?.text, `${message?.records.join('\r')}\r`);
  const after = receiver.acknowledge(true);
  t.same(sent(after), ACK, 'the L frame is ACKed once stored');
  t.same(events(after), ['transfer-end'], 'the queued EOT is processed after the ACK');
  t.equal(receiver.state, 'idle');
  t.end();
});

t.test('acknowledge(false) NAKs; the re-sent frame completes the message again, whole', (t) => {
  const receiver = started();
  receiver.feed(frame(1, 'H|\\^&\r'));
  receiver.feed(frame(2, 'R|1|^^^GLU|5.4\r'));
  t.equal(messages(receiver.feed(frame(3, 'L|1|N\r'))).length, 1);
  t.same(sent(receiver.acknowledge(false)), NAK);
  const again = receiver.feed(frame(3, 'L|1|N\r'));
  t.same(messages(again)[0]?.records, ['H|\\^&', 'R|1|^^^GLU|5.4', 'L|1|N'], 'nothing lost, nothing doubled');
  t.same(sent(again), Buffer.alloc(0), 'still held');
  t.same(sent(receiver.acknowledge(true)), ACK);
  t.same(messages(receiver.feed(EOT)), [], 'a committed message is not reported again at EOT');
  t.throws(() => receiver.acknowledge(true), TypeError, 'nothing awaits the store any more');
  t.end();
});

t.test('a lost ACK on the final frame: the re-sent frame is ACKed, not reported twice', (t) => {
  const receiver = started();
  receiver.feed(frame(1, 'H|\\^&\r'));
  receiver.feed(frame(2, 'L|1|N\r'));
  receiver.acknowledge(true);
  const dup = receiver.feed(frame(2, 'L|1|N\r'));
  t.same(sent(dup), ACK);
  t.same(events(dup), ['duplicate-frame']);
  t.same(messages(dup), []);
  t.end();
});

t.test('bad checksum → NAK, then the re-sent frame is accepted', (t) => {
  const receiver = started();
  const bad = receiver.feed(frame(1, 'H|\\^&\r', 'ETX', '00'));
  t.same(sent(bad), NAK);
  t.same(events(bad), ['malformed-frame: checksum mismatch']);
  t.same(sent(receiver.feed(frame(1, 'H|\\^&\r'))), ACK);
  receiver.feed(frame(2, 'L|1|N\r'));
  t.equal(receiver.state, 'awaiting-store');
  t.end();
});

t.test('a duplicated FN is ACKed again and not appended; a wrong FN is NAKed', (t) => {
  const receiver = started();
  receiver.feed(frame(1, 'H|\\^&\r'));
  receiver.feed(frame(2, 'R|1|^^^NA|140\r'));
  const dup = receiver.feed(frame(2, 'R|1|^^^NA|140\r'));
  t.same(sent(dup), ACK);
  t.same(events(dup), ['duplicate-frame']);
  const wrong = receiver.feed(frame(5, 'R|2|^^^K|4.1\r'));
  t.same(sent(wrong), NAK);
  t.same(events(wrong), ['malformed-frame: unexpected frame number']);
  const done = receiver.feed(frame(3, 'L|1|N\r'));
  t.same(messages(done)[0]?.records, ['H|\\^&', 'R|1|^^^NA|140', 'L|1|N']);
  t.end();
});

t.test('a lowercase checksum is accepted', (t) => {
  const receiver = started();
  // "1H|\^&" CR ETX sums to 485 = 0x1E5: sent as lowercase e5
  const text = 'H|\\^&\r';
  t.same(sent(receiver.feed(frame(1, text, 'ETX', 'e5'))), ACK);
  t.same(sent(receiver.feed(frame(2, text, 'ETX', 'zz'))), NAK, 'not hex: refused');
  t.end();
});

t.test('a record spanning ETB frames is joined; FN wraps 7 → 0', (t) => {
  const receiver = started();
  const acks = [frame(1, 'H|\\^&\r'), ...[2, 3, 4, 5, 6, 7].map((fn) => frame(fn, `C|${fn}|I|x\r`))];
  for (const f of acks) t.same(sent(receiver.feed(f)), ACK);
  t.same(sent(receiver.feed(frame(0, 'R|1|^^^WBC|', 'ETB'))), ACK);
  t.same(sent(receiver.feed(frame(1, '7.2|10*3/uL\r', 'ETB'))), ACK, 'Roche c111: ETB after a whole record');
  const done = receiver.feed(frame(2, 'L|1|N\r'));
  t.same(messages(done)[0]?.records.slice(-2), ['R|1|^^^WBC|7.2|10*3/uL', 'L|1|N']);
  t.end();
});

t.test('a missing CR, or CR LF, trailer is tolerated', (t) => {
  const receiver = started();
  t.same(sent(receiver.feed(frame(1, 'H|\\^&\r', 'ETX', undefined, '\n'))), ACK, 'LF only');
  t.same(sent(receiver.feed(frame(2, 'R|1|^^^K|4\r', 'ETX', undefined, ''))), ACK, 'no trailer');
  t.equal(messages(receiver.feed(frame(3, 'L|1|N\r'))).length, 1);
  t.end();
});

t.test('the receiver timer discards a partial message', (t) => {
  let now = 1000;
  const receiver = new AstmReceiver({ now: () => now, receiverTimeoutMs: 30_000 });
  receiver.feed(ENQ);
  receiver.feed(frame(1, 'H|\\^&\r'));
  t.same(receiver.tick(30_999), [], 'not yet');
  now = 31_000;
  t.same(events(receiver.tick()), ['timeout']);
  t.equal(receiver.state, 'idle');
  t.same(sent(receiver.feed(frame(2, 'L|1|N\r'))), Buffer.alloc(0), 'frames are ignored when idle');
  receiver.feed(ENQ);
  const done = receiver.feed(Buffer.concat([frame(1, 'H|\\^&\r'), frame(2, 'L|1|N\r')]));
  t.same(messages(done)[0]?.records, ['H|\\^&', 'L|1|N'], 'the discarded header is not carried over');
  t.same(receiver.tick(now + 60_000), [], 'no timeout while awaiting the store');
  t.end();
});

t.test('busy: ENQ answered NAK when the gateway cannot store', (t) => {
  let accepting = false;
  const receiver = new AstmReceiver({ now: () => 0, canAccept: () => accepting });
  const busy = receiver.feed(ENQ);
  t.same(sent(busy), NAK);
  t.same(events(busy), ['busy']);
  t.equal(receiver.state, 'idle');
  accepting = true;
  t.same(sent(receiver.feed(ENQ)), ACK);
  t.end();
});

t.test('records without an L record are reported at EOT, already acknowledged', (t) => {
  const receiver = started();
  receiver.feed(frame(1, 'H|\\^&\r'));
  receiver.feed(frame(2, 'R|1|^^^K|4\r'));
  const end = receiver.feed(EOT);
  t.same(messages(end), [
    {
      type: 'message',
      text: 'H|\\^&\rR|1|^^^K|4\r',
      records: ['H|\\^&', 'R|1|^^^K|4'],
      awaitingStore: false,
    },
  ]);
  t.same(events(end), ['transfer-end']);
  t.end();
});

t.test('EOT right after a refused frame: the analyzer gave up, the part ACKed is discarded', (t) => {
  const storeRefused = started();
  storeRefused.feed(frame(1, 'H|\\^&\r'));
  storeRefused.feed(frame(2, 'R|1|^^^K|4\r'));
  storeRefused.feed(frame(3, 'L|1|N\r'));
  storeRefused.acknowledge(false);
  const gaveUp = storeRefused.feed(EOT);
  t.same(messages(gaveUp), [], 'no message at EOT');
  t.same(events(gaveUp), ['aborted-message', 'transfer-end']);

  const badChecksum = started();
  badChecksum.feed(frame(1, 'H|\\^&\r'));
  t.same(sent(badChecksum.feed(frame(2, 'R|1|^^^K|4\r', 'ETB', '00'))), NAK);
  const aborted = badChecksum.feed(EOT);
  t.same(messages(aborted), [], 'a message without L whose last frame was refused is not reported');
  t.same(events(aborted), ['aborted-message', 'transfer-end']);

  const recovered = started();
  recovered.feed(frame(1, 'H|\\^&\r'));
  t.same(sent(recovered.feed(frame(2, 'R|1|^^^K|4\r', 'ETB', '00'))), NAK);
  t.same(sent(recovered.feed(frame(2, 'R|1|^^^K|4\r', 'ETB'))), ACK, 'the frame sent again is ACKed');
  t.same(messages(recovered.feed(EOT))[0]?.records, ['H|\\^&', 'R|1|^^^K|4'], 'then reported at EOT');

  const wrongNumber = started();
  wrongNumber.feed(frame(1, 'H|\\^&\r'));
  t.same(sent(wrongNumber.feed(frame(5, 'R|1|^^^K|4\r'))), NAK);
  t.same(events(wrongNumber.feed(EOT)), ['aborted-message', 'transfer-end']);
  t.end();
});

t.test('malformed frames are NAKed with a reason and no content', (t) => {
  const receiver = new AstmReceiver({ now: () => 0, maxFrameText: 8 });
  receiver.feed(ENQ);
  t.same(events(receiver.feed(frame(1, 'H|\\^&|||SECRET\r'))), ['malformed-frame: frame text too long']);
  t.same(events(receiver.feed(frame(1, 'H|\x10\r'))), [
    'malformed-frame: restricted character in frame text',
  ]);
  t.same(events(receiver.feed(Buffer.from('\x02X\x0300\r\n', 'latin1'))), [
    'malformed-frame: frame number is not 0-7',
  ]);
  const restarted = receiver.feed(Buffer.concat([Buffer.from('\x021H|', 'latin1'), frame(1, 'H|\\^&\r')]));
  t.same(events(restarted), ['malformed-frame: STX inside a frame'], 'a truncated frame is dropped');
  t.same(sent(restarted), ACK, 'the frame after it is read');
  const cut = receiver.feed(Buffer.from('\x022R|\x04', 'latin1'));
  t.same(events(cut), ['malformed-frame: EOT inside a frame', 'transfer-end']);
  t.same(messages(cut)[0]?.records, ['H|\\^&'], 'the ACKed records are still reported');
  t.end();
});

t.test('an ENQ during a transfer restarts it; bad options are refused', (t) => {
  const receiver = started();
  receiver.feed(frame(1, 'H|\\^&\r'));
  t.same(sent(receiver.feed(ENQ)), ACK);
  t.same(sent(receiver.feed(frame(1, 'H|\\^&\r'))), ACK, 'FN starts at 1 again');
  t.throws(() => new AstmReceiver({ receiverTimeoutMs: 0 }), TypeError);
  t.throws(() => new AstmReceiver({ maxFrameText: 0.5 }), TypeError);
  t.type(new AstmReceiver().tick(), Array, 'the default clock works');
  t.end();
});
