import { readFileSync } from 'node:fs';
import { FuzzMeter, fuzzParameters, liveBytes, type Mutation, mutate } from '@attache/devkit';
import {
  encodeMllp,
  type Hl7Interpretation,
  hl7AckFrame,
  interpretHl7,
  MLLP_END,
  MLLP_START,
  MllpFramer,
} from '@attache/hl7';
import fc from 'fast-check';
import t from 'tap';
import { ackProblem } from './ack-check.js';
import { vitalSigns } from './helpers.js';
import { realisticMessage } from './realistic.js';

const versions = ['2.5', '2.6'];
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
// Seeds: a PCD-01 ORU^R01, an ADT, and the two constructed ACK samples (unframed) as messages.
const seeds = [
  Buffer.from(vitalSigns('MSG0001'), 'latin1'),
  Buffer.from('MSH|^~\\&|A|B|C|D|20260101||ADT^A01|7|P|2.5\rPID|||X1', 'latin1'),
  fixture('hl7_mllp_ack_aa_constructed.bin').subarray(1, -2),
  fixture('hl7_mllp_ack_ae_constructed.bin').subarray(1, -2),
];
const mutation = fc.tuple(fc.nat(), fc.nat(), fc.nat(255)) as fc.Arbitrary<Mutation>;

/** The ACK frame the session sends for `payload`, or undefined for a message it does not acknowledge. */
function answer(payload: Buffer): { result: Hl7Interpretation; frame: Buffer | undefined } {
  const result = interpretHl7(payload, { versions });
  if (result.kind === 'ignore') return { result, frame: undefined };
  const code = result.kind === 'reject' ? result.code : 'AA';
  const error = result.kind === 'reject' ? { error: result.error } : {};
  return {
    result,
    frame: hl7AckFrame(payload, { message: result.message, code, controlId: 'GW1', ...error }),
  };
}

/** Throws unless `frame` is one well-formed ACK frame whose MSA-1 is the decision. */
function checkAck(payload: Buffer): void {
  const { result, frame } = answer(payload);
  if (frame === undefined) return;
  const code = result.kind === 'reject' ? result.code : 'AA';
  const problem = ackProblem(frame, code, result.message);
  if (problem !== undefined) throw new Error(problem);
}

t.test('any message gets one well-formed ACK frame whose MSA is the decision', async (t) => {
  const meter = new FuzzMeter('hl7 parse + ack');
  const run = () =>
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(mutation, { maxLength: 12 }), (seed, muts) => {
        const payload = mutate(seed, muts).filter((b) => b !== MLLP_START && b !== MLLP_END);
        meter.run(() => checkAck(Buffer.from(payload)));
      }),
      fuzzParameters(300),
    );
  run();
  const before = liveBytes();
  run();
  const growth = liveBytes() - before;
  t.comment(meter.summary());
  t.ok(growth < 8 * 1024 * 1024, `live memory flat (grew ${(growth / 1024).toFixed(0)} KiB)`);
});

t.test('messages shaped like real traffic, in UTF-8 or Latin-1: one well-formed ACK each', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        realisticMessage,
        fc.constantFrom('utf8', 'latin1') as fc.Arbitrary<BufferEncoding>,
        (text, encoding) => checkAck(Buffer.from(text, encoding)),
      ),
      fuzzParameters(300),
    ),
  );
});

/** Printable ASCII that is not a letter, digit or space: what MSH-1/MSH-2 may hold. */
const delimiterChars = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'];

t.test('every delimiter set a message may declare gives a valid ACK echoing its fields', async (t) => {
  const meter = new FuzzMeter('hl7 delimiter sets');
  const field = fc.string({
    unit: fc.constantFrom(...delimiterChars, 'a', '1', '\x0b', '\x1c', '\r', 'é'),
    maxLength: 12,
  });
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(...delimiterChars), { minLength: 5, maxLength: 5 }),
        fc.boolean(),
        fc.array(field, { minLength: 6, maxLength: 6 }),
        (chars, withSub, values) => {
          const [f, c, r, e, s] = chars as [string, string, string, string, string];
          // Fields are sent raw: whatever delimiters they hold split them, as a real sender's would.
          const raw = values.map((v) => [...v].filter((ch) => !['\r', '\x0b', '\x1c'].includes(ch)).join(''));
          const msh = [
            `MSH${f}${c}${r}${e}${withSub ? s : ''}`,
            raw[0],
            raw[1],
            raw[2],
            raw[3],
            '20260101',
            '',
            `ORU${c}R01`,
            `ID${raw[4]}`,
            'P',
            '2.6',
          ].join(f);
          const obx = ['OBX', '1', 'NM', `150456${c}X${c}MDC`, '', '97'].join(f);
          meter.run(() => checkAck(Buffer.from(`${msh}\r${obx}`, 'utf8')));
        },
      ),
      fuzzParameters(300),
    ),
  );
  t.comment(meter.summary());
});

t.test('MLLP framing gives back exactly the frames sent, however the stream is cut', async (t) => {
  const meter = new FuzzMeter('mllp framing');
  const body = fc
    .uint8Array({ minLength: 1, maxLength: 300 })
    .map((a) => Buffer.from(a.filter((b) => b !== MLLP_START && b !== MLLP_END)));
  const junk = fc
    .uint8Array({ maxLength: 20 })
    .map((a) => Buffer.from(a.filter((b) => b === 0x0d || b === 0x0a || b === 0x41)));
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(
        fc.array(fc.tuple(junk, body), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 97 })),
        (parts, cuts) => {
          const stream = Buffer.concat(parts.flatMap(([j, b]) => [j, encodeMllp(b)]));
          const framer = new MllpFramer({ maxMessageBytes: 200 });
          const got: Buffer[] = [];
          let oversize = 0;
          meter.run(() => {
            let pos = 0;
            for (const cut of [...cuts, stream.length]) {
              for (const event of framer.push(stream.subarray(pos, pos + cut))) {
                if (event.type === 'message') got.push(event.payload);
                if (event.type === 'oversize') oversize++;
              }
              pos += cut;
              if (pos >= stream.length) break;
            }
          });
          const kept = parts.map(([, b]) => b).filter((b) => b.length <= 200);
          const long = parts.filter(([, b]) => b.length > 200).length;
          return (
            oversize === long &&
            got.length === kept.length &&
            got.every((g, i) => g.equals(kept[i] as Buffer))
          );
        },
      ),
      fuzzParameters(300),
    ),
  );
  t.comment(meter.summary());
});

t.test('pathological messages are answered in time linear in their size', async (t) => {
  const meter = new FuzzMeter('hl7 pathological', 5000);
  const msh = 'MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.6';
  // 100,000 digits and a letter as an NM value: 18.6 s to refuse with the old pattern.
  const digits = Buffer.from(`${msh}\rOBX|1|NM|150456^X^MDC||${'1'.repeat(100_000)}x`, 'latin1');
  const refused = meter.run(() => answer(digits));
  t.match(refused.result, { kind: 'reject', code: 'AE', error: { hl7Code: 102, location: 'OBX^1^5' } });
  // about 1 MiB: 10,000 OBX segments; a field of 1 MiB of escapes; one segment of 1 MiB of delimiters.
  const obx = 'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97|262688^MDC_DIM_PERCENT^MDC|||||F';
  const many = Buffer.from(`${msh}\r${Array(10_000).fill(obx).join('\r')}`, 'latin1');
  t.equal(meter.run(() => answer(many)).result.kind, 'reading');
  const escapes = Buffer.from(`${msh}\rOBX|1|ST|X^Y^L||${'\\F\\\\X0D\\'.repeat(100_000)}`, 'latin1');
  t.equal(meter.run(() => answer(escapes)).result.kind, 'reading');
  const delimiters = Buffer.from(`${msh}\rOBX${'|^~&'.repeat(250_000)}`, 'latin1');
  meter.run(() => checkAck(delimiters));
  t.comment(meter.summary());
});
