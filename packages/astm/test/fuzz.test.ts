import { readFileSync } from 'node:fs';
import { type AstmAction, AstmReceiver, astmReadings, parseAstmMessage } from '@attache/astm';
import { isGatewayError } from '@attache/core';
import { FuzzMeter, fuzzParameters, liveBytes, type Mutation, mutate } from '@attache/devkit';
import fc from 'fast-check';
import t from 'tap';
import { MessageRecords } from '../src/message-records.js';

// Seeds: the constructed host-query sample (ENQ, H/Q/L frames, EOT) and a result message.
const sample = readFileSync(new URL('./fixtures/astm_host_query_constructed.bin', import.meta.url));
const resultText =
  'H|\\^&|||LAB^1.0|||||||P|LIS2-A2|20260101120000\rP|1||PID123\rO|1|S1||^^^GLU\r' +
  'R|1|^^^GLU^^^LN|5.4|mmol/L|3.9-6.1|N||F||||20260101115900\rC|1|I|note^x|G\rL|1|N\r';

/** `text` as E1381 frames of at most 240 characters (ETB, then ETX), numbered from 1. */
function frames(text: string, size = 240): Buffer {
  const parts: Buffer[] = [Buffer.from([0x05])];
  for (let i = 0, fn = 1; i < text.length; i += size, fn = (fn + 1) % 8) {
    const last = i + size >= text.length;
    const body = `${fn}${text.slice(i, i + size)}${last ? '\x03' : '\x17'}`;
    let sum = 0;
    for (const ch of body) sum += ch.charCodeAt(0);
    parts.push(
      Buffer.from(`\x02${body}${(sum % 256).toString(16).toUpperCase().padStart(2, '0')}\r\n`, 'latin1'),
    );
  }
  return Buffer.concat(parts);
}

const mutation = fc.tuple(fc.nat(), fc.nat(), fc.nat(255)) as fc.Arbitrary<Mutation>;
const mutations = fc.array(mutation, { maxLength: 12 });

/** Feeds `bytes` in chunks of the given sizes, acknowledging every held message (stored or not). */
function receive(receiver: AstmReceiver, bytes: Buffer, cuts: number[], stored: boolean): AstmAction[] {
  const actions: AstmAction[] = [];
  let pos = 0;
  for (const cut of [...cuts, bytes.length]) {
    const end = Math.min(bytes.length, pos + Math.max(1, cut));
    actions.push(...receiver.feed(bytes.subarray(pos, end)));
    while (receiver.state === 'awaiting-store') actions.push(...receiver.acknowledge(stored));
    pos = end;
    if (pos >= bytes.length) break;
  }
  return actions;
}

const isAckOrNak = (bytes: Buffer) => bytes.length === 1 && (bytes[0] === 0x06 || bytes[0] === 0x15);

t.test('the E1381 receiver takes any bytes: only ACK/NAK sent, no exception, in bounded time', async (t) => {
  const meter = new FuzzMeter('astm receiver');
  const seeds = [sample, frames(resultText), frames(resultText.repeat(3), 17)];
  // A first round warms the code up; the second must not grow live memory.
  const run = () =>
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        mutations,
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }),
        fc.boolean(),
        (seed, muts, cuts, stored) => {
          const receiver = new AstmReceiver({ now: () => 0, maxMessageText: 4096, maxFrameText: 240 });
          const actions = meter.run(() => receive(receiver, mutate(seed, muts), cuts, stored));
          for (const action of actions) {
            if (action.type === 'send' && !isAckOrNak(action.bytes))
              throw new Error('sent other than ACK/NAK');
            if (action.type === 'message' && !action.records.every((r) => r !== '' && !/[\r\n]/.test(r))) {
              throw new Error('a record is empty or holds a CR or LF');
            }
          }
        },
      ),
      fuzzParameters(300),
    );
  run();
  const before = liveBytes();
  run();
  const growth = liveBytes() - before;
  t.comment(meter.summary());
  t.ok(growth < 8 * 1024 * 1024, `live memory flat (grew ${(growth / 1024).toFixed(0)} KiB)`);
});

t.test('records split frame by frame are the records of the whole text', async (t) => {
  const text = fc.string({ unit: fc.constantFrom('H', 'L', 'R', '|', '\r', '\n', 'x', '^'), maxLength: 60 });
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.array(text, { maxLength: 10 }), text, (texts, last) => {
        const message = new MessageRecords();
        for (const piece of texts) message.add(piece);
        const whole = texts.join('') + last;
        const expected = whole.split(/[\r\n]+/).filter((r) => r !== '');
        const contents = message.contents(last);
        return (
          JSON.stringify(contents.records) === JSON.stringify(expected) &&
          contents.text === whole &&
          message.endsWithTerminatorAfter(last) === (expected.at(-1)?.[0] === 'L') &&
          message.length === whole.length - last.length
        );
      }),
      fuzzParameters(300),
    ),
  );
});

t.test(
  'the record parser refuses bad messages only with ATTACHE_MALFORMED; readings never throw',
  async (t) => {
    const meter = new FuzzMeter('astm records');
    const seeds = [Buffer.from(resultText, 'latin1'), Buffer.from(resultText.replaceAll('|', '!'), 'latin1')];
    fc.assert(
      fc.property(fc.constantFrom(...seeds), mutations, (seed, muts) => {
        const text = mutate(seed, muts).toString('latin1');
        meter.run(() => {
          try {
            astmReadings(parseAstmMessage(text), { comments: true });
          } catch (err) {
            if (!isGatewayError(err, 'ATTACHE_MALFORMED')) throw err;
          }
        });
      }),
      fuzzParameters(400),
    );
    t.comment(meter.summary());
  },
);

t.test('pathological messages cost time linear in their size', async (t) => {
  const meter = new FuzzMeter('astm pathological', 5000);
  // 25,000 records (1 MB) sent frame by frame: 78 s of CPU while the receiver re-split the message.
  const records = `H|\\^&\r${'R|1|^^^GLU|5.4|mmol/L||N||F\r'.repeat(25_000)}L|1|N\r`;
  const receiver = new AstmReceiver({ now: () => 0, maxMessageText: 2_000_000 });
  const actions = meter.run(() => receiver.feed(frames(records)));
  const message = actions.find((a) => a.type === 'message');
  t.equal(message?.type === 'message' ? message.records.length : 0, 25_002, 'every record kept');
  // One record of 1 MB without a CR, and 100,000 digits then a letter as a result value.
  meter.run(() => receiver.acknowledge(true));
  meter.run(() => new AstmReceiver({ now: () => 0 }).feed(frames(`H|\\^&\r${'R'.repeat(1_000_000)}`)));
  const digits = `H|\\^&\rR|1|^^^GLU|${'1'.repeat(100_000)}x\rL|1|N\r`;
  const parsed = meter.run(() => astmReadings(parseAstmMessage(digits), { comments: false }));
  t.equal(parsed[0]?.observations?.[0]?.value, `${'1'.repeat(100_000)}x`, 'kept as text, not a number');
  t.comment(meter.summary());
});

t.test('a frame that never ends is refused at its end without its text kept', async (t) => {
  const receiver = new AstmReceiver({ now: () => 0 });
  receiver.feed(Buffer.from('\x05\x021', 'latin1'));
  const before = liveBytes();
  for (let i = 0; i < 40; i++) receiver.feed(Buffer.alloc(256 * 1024, 0x41));
  t.ok(liveBytes() - before < 4 * 1024 * 1024, '10 MiB of frame text not kept');
  const actions = receiver.feed(Buffer.from('\x0300\r\n', 'latin1'));
  t.match(actions, [
    { type: 'send' },
    { type: 'event', event: 'malformed-frame', reason: 'frame text too long' },
  ]);
});

t.test('bytes sent while a message awaits the store are kept up to maxMessageText', async (t) => {
  const sentAfterStore = (noise: number) => {
    const receiver = new AstmReceiver({ now: () => 0, maxMessageText: 4096 });
    receiver.feed(frames('H|\\^&\rL|1|N\r').subarray(0, -1)); // held: no EOT yet
    receiver.feed(Buffer.concat([Buffer.alloc(noise, 0x78), Buffer.from([0x04, 0x05])]));
    return receiver.acknowledge(true).flatMap((a) => (a.type === 'send' ? [...a.bytes] : []));
  };
  t.same(sentAfterStore(100), [0x06, 0x06], 'the final frame, then the ENQ that followed');
  t.same(sentAfterStore(5000), [0x06], 'past the bound the rest is dropped');
});

t.test('many small messages sent without waiting cost time linear in their number', async (t) => {
  const meter = new FuzzMeter('astm queued messages', 5000);
  // 4,000 messages of 60 bytes arrive while the first awaits the store: each acknowledge() hands the
  // rest back; copying the rest every time would be quadratic.
  const one = frames('H|\\^&\rL|1|N\r');
  const burst = Buffer.concat(Array(4000).fill(one));
  const receiver = new AstmReceiver({ now: () => 0, maxMessageText: burst.length });
  let messages = 0;
  meter.run(() => {
    for (let actions = receiver.feed(burst); ; actions = receiver.acknowledge(true)) {
      messages += actions.filter((a) => a.type === 'message').length;
      if (receiver.state !== 'awaiting-store') break;
    }
  });
  t.equal(messages, 4000, 'every message delivered once');
  t.comment(meter.summary());
});
