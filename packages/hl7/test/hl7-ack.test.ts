import {
  buildHl7Ack,
  decodeHl7,
  encodeHl7,
  type Hl7Interpretation,
  hl7AckFrame,
  interpretHl7,
  parseHl7Message,
} from '@attache/hl7';
import t, { type Test } from 'tap';
import { ackProblem } from './ack-check.js';

const versions = ['2.5', '2.6'];

/** The frame the session would send for `text`, checked: one frame, one MSA, MSA-1 = the decision. */
function answer(t: Test, text: string | Buffer): { frame: Buffer; result: Hl7Interpretation } {
  const payload = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  const result = interpretHl7(payload, { versions });
  if (result.kind === 'ignore') throw new Error('ignored');
  const code = result.kind === 'reject' ? result.code : 'AA';
  const error = result.kind === 'reject' ? { error: result.error } : {};
  const frame = hl7AckFrame(payload, { message: result.message, code, controlId: 'GW1', ...error });
  t.equal(ackProblem(frame, code, result.message), undefined, `a sound ${code} frame`);
  return { frame, result };
}

const obx = 'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97|262688^MDC_DIM_PERCENT^MDC|||||F';

t.test('a trigger holding an escaped FS cannot cut the ACK frame', async (t) => {
  const { frame } = answer(t, `MSH|^~\\&|A|B|C|D|20260101||ORU^R01\\X1C\\X|1|P|2.6\r${obx}`);
  t.notOk(frame.subarray(1, -2).includes(0x1c));
  t.match(frame.toString('latin1'), /\|ACK\^R01\\X1C\\X\^ACK\|/, 'echoed as an escape');
});

t.test('a trigger holding a segment break and MSA|AA cannot add an MSA to the ACK', async (t) => {
  // Unsupported version: the decision is AR, and no AA may precede it.
  const { frame } = answer(t, 'MSH|^~\\&|A|B|C|D|20260101||ORU^R01\\.br\\MSA\\F\\AA\\F\\1|1|P|2.1');
  t.equal(frame.toString('latin1').match(/MSA\|/g)?.length, 1, 'one MSA');
  t.match(frame.toString('latin1'), /\rMSA\|AR\|1\r/);
});

t.test('every field copied into the ACK is encoded again, whatever it held', async (t) => {
  const { frame } = answer(
    t,
    `MSH|^~\\&|APP\\F\\1^x\\X0B\\y^ISO|FAC&sub|RCV|RF|20260101||ORU^R01|ID\\S\\7|P\\R\\|2.6\r${obx}`,
  );
  const ack = parseHl7Message(frame.subarray(1, -2).toString('latin1'));
  t.equal(ack.msh.get(5), 'APP|1', 'MSH-3 became MSH-5, its \\F\\ kept as an escape');
  t.equal(ack.msh.get(5, 2), 'x\x0by', 'a control byte travels as \\X0B\\');
  t.equal(ack.msh.raw(6), 'FAC&sub', 'sub-components kept');
  t.equal(ack.segments[1]?.get(2), 'ID^7');
});

t.test(
  'a raw control byte in a field without escapes is escaped in the ACK; plain fields are copied',
  async (t) => {
    const { frame } = answer(t, `MSH|^~\\&|MON\x0bX^7&8|WARD~2|RCV|RF|20260101||ORU^R01|ID7|P|2.6\r${obx}`);
    const text = frame.subarray(1, -2).toString('latin1');
    t.notOk(text.includes('\x0b'), 'no raw VT inside the frame');
    const ack = parseHl7Message(text);
    t.equal(ack.msh.raw(5), 'MON\\X0B\\X^7&8', 'the VT travels as \\X0B\\, components kept');
    t.equal(ack.msh.raw(6), 'WARD~2', 'repetitions copied as sent');
    t.equal(ack.segments[1]?.raw(2), 'ID7');
  },
);

t.test(
  'encodeHl7 escapes each delimiter and control character, and leaves plain text as it is',
  async (t) => {
    const d = parseHl7Message(`MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.6`).delimiters;
    t.equal(encodeHl7('a|b^c~d\\e&f\x0bg', d), 'a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\X0B\\g');
    const plain = 'MONITOR 7 (bed 12)';
    t.equal(encodeHl7(plain, d), plain);
    t.equal(decodeHl7(encodeHl7('x|y&z', d), d), 'x|y&z', 'decodes back');
  },
);

t.test('fuzz finds kept as cases: an escape spanning a sub-component separator', async (t) => {
  // Delimiters ! | ` " ' and MSH-10 ID"'": the sub-component separator splits the escape in two.
  answer(
    t,
    `MSH!|\`"'!!!!!20260101!!ORU|R01!ID"'"!P!2.6
OBX!1!NM!150456|X|MDC!!97`,
  );
});

t.test('& as the field separator gives a parseable ACK with a spare sub-component separator', async (t) => {
  const text = `MSH&^~\\&APP&FAC&RCV&RF&20260101&&ORU^R01&42&P&2.6\r${obx.replaceAll('|', '&')}`;
  const { frame, result } = answer(t, text);
  t.equal(result.kind, 'reading');
  t.same(result.message?.delimiters, {
    field: '&',
    component: '^',
    repetition: '~',
    escape: '\\',
    subcomponent: '$',
  });
  t.ok(frame.subarray(1).toString('latin1').startsWith('MSH&^~\\$&RCV&RF&APP&FAC&'), 'MSH-2 declares $');
});

t.test(
  'delimiters that are not distinct printable characters are refused with AE 102 and the standard ones',
  async (t) => {
    for (const text of ['MSH|^~\\^|A', 'MSH|^~~&|A', 'MSH\t^~\\&\tA', 'MSH|^~\\\u00a7|A', 'MSH|^~\\&#Q|A']) {
      const { result } = answer(t, text);
      t.match(result, {
        kind: 'reject',
        code: 'AE',
        message: undefined,
        error: { hl7Code: 102, location: 'MSH^1^2' },
      });
    }
    t.match(
      answer(t, 'MSH|^~\\&#|A|B|C|D|20260101||ADT^A01|1|P|2.6').result,
      { kind: 'reading' },
      'v2.7 truncation',
    );
    t.match(
      answer(t, 'MSH|^~\\|A|B|C|D|20260101||ADT^A01|1|P|2.6').result,
      { kind: 'reading' },
      'no sub-component',
    );
  },
);

t.test('escapes named like built-in properties decode to nothing, not "undefined"', async (t) => {
  const d = parseHl7Message('MSH|^~\\&|A').delimiters;
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    t.equal(decodeHl7(`a\\${name}\\b`, d), 'ab', name);
  }
  t.equal(decodeHl7('\\F\\\\S\\\\T\\\\R\\\\E\\', d), '|^&~\\');
});

t.test('an ACK for a message without a usable MSH uses the standard delimiters', async (t) => {
  const ack = buildHl7Ack({
    message: undefined,
    code: 'AE',
    controlId: 'C\r1',
    timestamp: '20260101000000',
    error: { hl7Code: 100, reason: 'no MSH|here' },
  });
  t.equal(
    ack,
    'MSH|^~\\&|ATTACHE||||20260101000000||ACK|C\\X0D\\1|P|2.5\rMSA|AE|\rERR|||100^Segment sequence error^HL70357|E||||no MSH\\F\\here\r',
  );
});
