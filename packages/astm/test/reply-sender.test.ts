import { AstmReceiver, AstmReplySender, buildNoInformationReply, frameAstmRecords } from '@attache/astm';
import { type LogEntry, recordingLogger } from '@attache/devkit';
import t from 'tap';

const ENQ = Buffer.from([0x05]);
const ACK = Buffer.from([0x06]);
const NAK = Buffer.from([0x15]);
const EOT = Buffer.from([0x04]);
const NONE = Buffer.alloc(0);

/** The reply the adapters queue after a host query: H and `L|1|I`, two frames. */
const REPLY = buildNoInformationReply({ timestamp: '20240627140000' });
const [FRAME1, FRAME2] = frameAstmRecords(REPLY) as [Buffer, Buffer];

/** A sender writing into a list, logging into `entries`; `take()` returns what it wrote since the last call. */
function harness() {
  const written: Buffer[] = [];
  const entries: LogEntry[] = [];
  const sender = new AstmReplySender((bytes) => written.push(Buffer.from(bytes)), recordingLogger(entries));
  const take = (): Buffer => Buffer.concat(written.splice(0));
  return { sender, entries, take };
}

/** A sender holding one queued reply whose ENQ went out at `startMs`. */
function enqSent(startMs = 0) {
  const h = harness();
  h.sender.queue(REPLY);
  h.sender.maybeStart(startMs);
  h.take();
  return h;
}

function messages(entries: LogEntry[], level: string): (string | undefined)[] {
  return entries.filter((e) => e.level === level).map((e) => e.msg);
}

t.test('a queued reply starts with ENQ only at maybeStart; one frame per ACK, then EOT', (t) => {
  const { sender, entries, take } = harness();
  sender.queue(REPLY);
  t.same(take(), NONE, 'queueing writes nothing');
  t.equal(sender.active, false);
  sender.maybeStart(0);
  const wire = [take()];
  t.same(wire[0], ENQ, 'ENQ first');
  t.equal(sender.active, true, 'the gateway holds the line');
  sender.maybeStart(1);
  t.same(take(), NONE, 'no second ENQ while waiting');
  t.same(sender.onData(ACK, 2), NONE, 'the answers are the sender’s, not the receiver’s');
  wire.push(take());
  t.same(wire[1], FRAME1, 'ACK to the ENQ: the H frame');
  sender.onData(ACK, 3);
  wire.push(take());
  t.same(wire[2], FRAME2, 'ACK: the L frame');
  sender.onData(ACK, 4);
  wire.push(take());
  t.same(wire[3], EOT, 'ACK to the last frame: EOT');
  t.equal(sender.active, false, 'the line is free again');
  t.match(entries, [{ level: 'info', msg: 'ASTM host-query reply sent', frames: 2 }]);
  sender.maybeStart(5);
  t.same(take(), NONE, 'nothing left to send');
  const instrument = new AstmReceiver({ now: () => 0 });
  const [message] = instrument.feed(Buffer.concat(wire)).filter((a) => a.type === 'message');
  t.same(message?.records, REPLY, 'an E1381 receiver reads the reply whole');
  t.end();
});

t.test('a NAK to a frame re-sends it; re-sends of one frame do not count against the next', (t) => {
  const { sender, entries, take } = enqSent();
  sender.onData(ACK, 1);
  t.same(take(), FRAME1);
  sender.onData(NAK, 2);
  t.same(take(), FRAME1, 'NAK: the same frame again');
  for (let i = 0; i < 5; i++) sender.onData(NAK, 3);
  t.same(take(), Buffer.concat(Array(5).fill(FRAME1)), 'six re-sends of the H frame in all');
  sender.onData(ACK, 4);
  t.same(take(), FRAME2, 'accepted at last: the next frame');
  for (let i = 0; i < 6; i++) sender.onData(NAK, 5);
  t.same(take(), Buffer.concat(Array(6).fill(FRAME2)), 'the L frame gets its own six re-sends');
  sender.onData(ACK, 6);
  t.same(take(), EOT);
  t.same(messages(entries, 'warn'), [], 'no warning');
  t.match(entries, [{ msg: 'ASTM host-query reply sent' }]);
  t.end();
});

t.test('a frame refused again after six re-sends: EOT, the reply is dropped with a warning', (t) => {
  const { sender, entries, take } = enqSent();
  sender.onData(ACK, 1);
  take();
  for (let i = 0; i < 6; i++) sender.onData(NAK, 2);
  t.same(take(), Buffer.concat(Array(6).fill(FRAME1)));
  sender.onData(NAK, 3);
  t.same(take(), EOT, 'the seventh NAK ends the transfer');
  t.equal(sender.active, false);
  t.match(entries, [
    { level: 'warn', msg: 'ASTM host-query reply aborted', reason: 'frame refused seven times' },
  ]);
  sender.maybeStart(60_000);
  t.same(take(), NONE, 'the reply is gone');
  t.end();
});

t.test('contention: an ENQ from the instrument wins; our reply waits 20 s', (t) => {
  const { sender, entries, take } = enqSent(1000);
  // The instrument's own transfer starts in the same chunk as its ENQ.
  const theirs = Buffer.concat([ENQ, frameAstmRecords(['H|\\^&'])[0] as Buffer]);
  const rest = sender.onData(theirs, 1500);
  t.same(rest, theirs, 'every byte, ENQ included, goes back to the caller');
  t.same(take(), NONE, 'the gateway answers nothing itself');
  t.equal(sender.active, false, 'the gateway gave up the line');
  const receiver = new AstmReceiver({ now: () => 1500 });
  const answers = receiver.feed(rest);
  t.same(
    answers.flatMap((a) => (a.type === 'send' ? [a.bytes] : [])),
    [ACK, ACK],
    'the receiver ACKs the instrument’s ENQ and frame',
  );
  t.match(entries, [
    {
      level: 'info',
      msg: 'ASTM host-query reply postponed',
      reason: 'contention: the instrument sends first',
      retryInMs: 20_000,
    },
  ]);
  sender.maybeStart(21_499);
  t.same(take(), NONE, 'no ENQ before 20 s have passed');
  sender.maybeStart(21_500);
  t.same(take(), ENQ, '20 s after the contention: ENQ again');
  sender.onData(ACK, 21_600);
  sender.onData(ACK, 21_700);
  sender.onData(ACK, 21_800);
  t.same(take(), Buffer.concat([FRAME1, FRAME2, EOT]), 'the reply goes out whole');
  t.end();
});

t.test('a NAK to our ENQ (busy) waits 10 s', (t) => {
  const { sender, entries, take } = enqSent(1000);
  t.same(sender.onData(NAK, 1500), NONE, 'a NAK is not for the receiver');
  t.equal(sender.active, false);
  t.match(entries, [
    { level: 'info', msg: 'ASTM host-query reply postponed', reason: 'instrument busy', retryInMs: 10_000 },
  ]);
  sender.maybeStart(11_499);
  t.same(take(), NONE, 'no ENQ before 10 s have passed');
  sender.maybeStart(11_500);
  t.same(take(), ENQ, '10 s after the NAK: ENQ again');
  t.end();
});

t.test('no answer to our ENQ within 15 s: EOT, then ENQ again 10 s later', (t) => {
  const { sender, entries, take } = enqSent(1000);
  sender.tick(15_999);
  t.same(take(), NONE, 'still waiting at 14.999 s');
  sender.tick(16_000);
  t.same(take(), EOT, 'the attempt ends with EOT');
  t.equal(sender.active, false);
  t.match(entries, [{ reason: 'no answer to ENQ', retryInMs: 10_000 }]);
  sender.maybeStart(25_999);
  t.same(take(), NONE);
  sender.maybeStart(26_000);
  t.same(take(), ENQ);
  t.end();
});

t.test('no answer to a frame within 15 s: EOT, the reply is dropped with a warning', (t) => {
  const { sender, entries, take } = enqSent();
  sender.onData(ACK, 1000);
  take();
  sender.tick(15_999);
  t.same(take(), NONE);
  sender.tick(16_000);
  t.same(take(), EOT);
  t.match(entries, [{ level: 'warn', msg: 'ASTM host-query reply aborted', reason: 'no answer to a frame' }]);
  sender.maybeStart(60_000);
  t.same(take(), NONE, 'the reply is gone');
  t.end();
});

t.test('failed ENQs: after the first and six retries the reply is dropped with a warning', (t) => {
  const { sender, entries, take } = harness();
  sender.queue(REPLY);
  let now = 0;
  let enqs = 0;
  // Busy, contention and silence all count; each waits its own delay, ms.
  const failures: ((at: number) => number)[] = [
    (at) => {
      sender.onData(NAK, at);
      return 10_000;
    },
    (at) => {
      sender.onData(ENQ, at);
      return 20_000;
    },
    (at) => {
      sender.tick(at + 15_000);
      return 15_000 + 10_000;
    },
  ];
  for (let i = 0; i < 7; i++) {
    sender.maybeStart(now);
    if (take().equals(ENQ)) enqs++;
    now += (failures[i % 3] as (at: number) => number)(now);
    take();
  }
  t.equal(enqs, 7, 'every attempt waited for its delay, then sent ENQ');
  t.same(messages(entries, 'info'), Array(6).fill('ASTM host-query reply postponed'));
  t.match(entries.at(-1), {
    level: 'warn',
    msg: 'ASTM host-query reply dropped after seven attempts',
    reason: 'instrument busy',
  });
  sender.maybeStart(now + 60_000);
  t.same(take(), NONE, 'the reply is gone');
  sender.queue(REPLY);
  sender.maybeStart(now + 60_000);
  t.same(take(), ENQ, 'the next reply starts afresh');
  t.end();
});

t.test('more than eight replies waiting: the ninth is dropped with a warning', (t) => {
  const { sender, entries, take } = harness();
  for (let i = 0; i < 9; i++) sender.queue(REPLY);
  t.match(entries, [{ level: 'warn', msg: 'too many ASTM replies waiting; reply dropped', pending: 8 }]);
  let transfers = 0;
  for (let now = 0; now < 20; now++) {
    sender.maybeStart(now);
    if (!take().equals(ENQ)) break;
    for (let i = 0; i < 3; i++) sender.onData(ACK, now);
    if (take().equals(Buffer.concat([FRAME1, FRAME2, EOT]))) transfers++;
  }
  t.equal(transfers, 8, 'eight replies sent, one after the other');
  t.end();
});

t.test('bytes after the reply ended in the same chunk are the instrument’s: its ENQ is not lost', (t) => {
  const { sender, take } = enqSent();
  sender.onData(ACK, 1);
  sender.onData(ACK, 2);
  take();
  t.same(
    sender.onData(Buffer.concat([ACK, ENQ]), 3),
    ENQ,
    'ACK to the last frame, then the instrument’s ENQ',
  );
  t.same(take(), EOT);
  t.equal(sender.active, false);
  t.end();
});
