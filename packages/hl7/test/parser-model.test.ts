import { fuzzParameters, type Mutation, mutate } from '@attache/devkit';
import { type Hl7Segment, parseHl7Message, parseProblem } from '@attache/hl7';
import fc from 'fast-check';
import t from 'tap';
import { vitalSigns } from './helpers.js';
import { realisticMessage } from './realistic.js';
import { type ReferenceSegment, referenceParse } from './reference-parser.js';

/**
 * The single-pass parser reads every message exactly as the reference (split every line, then every
 * field read) does: the same refusals with the same table 0357 code, location and reason, the same
 * segments, and the same value for every field, repetition and component a reader may ask for.
 */

/** Differences between what the parser and the reference give for `text` (none when they agree). */
function differences(text: string, expected = referenceParse(text)): string[] {
  let message: ReturnType<typeof parseHl7Message>;
  try {
    message = parseHl7Message(text);
  } catch (err) {
    const problem = parseProblem(err);
    const got = { hl7Code: problem?.hl7Code, location: problem?.location, message: (err as Error).message };
    if ('problem' in expected && JSON.stringify(got) === JSON.stringify(expected.problem)) return [];
    return [`refused ${JSON.stringify(got)}, reference ${JSON.stringify(expected)}`];
  }
  if ('problem' in expected) return [`parsed; the reference refused ${JSON.stringify(expected.problem)}`];
  const found: string[] = [];
  const same = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b))
      found.push(`${what}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`);
  };
  same('delimiters', message.delimiters, expected.delimiters);
  same('MSH text', message.mshText, expected.mshText);
  same(
    'segments',
    message.segments.map((s) => s.name),
    expected.segments.map((s) => s.name),
  );
  message.segments.forEach((segment, i) => {
    compareSegment(`segment ${i + 1}`, segment, expected.segments[i] as ReferenceSegment, same);
  });
  return found;
}

/** Throws the first differences from the reference for `text`; whether the reference parsed it. */
function agreesWithReference(text: string): boolean {
  const expected = referenceParse(text);
  const found = differences(text, expected);
  if (found.length > 0) throw new Error(found.slice(0, 3).join('\n'));
  return !('problem' in expected);
}

function compareSegment(
  where: string,
  segment: Hl7Segment,
  reference: ReferenceSegment,
  same: (what: string, a: unknown, b: unknown) => void,
): void {
  // Out of order on purpose: a read must not depend on which reads came before it.
  for (const n of [5, 0, 1, 2, 3, 4, 9, 8, 7, 6, 10, 11, 12, 14, 18, 20, 30]) {
    same(`${where} raw(${n})`, segment.raw(n), reference.raw(n));
    same(`${where} repetitions(${n})`, segment.repetitions(n), reference.repetitions(n));
    same(`${where} repetitionCount(${n})`, segment.repetitionCount(n), reference.repetitions(n).length);
    for (const rep of [0, 2, 1, 3]) {
      same(`${where} components(${n}, ${rep})`, segment.components(n, rep), reference.components(n, rep));
      for (const c of [1, 3, 2, 4, 7]) {
        same(`${where} get(${n}, ${c}, ${rep})`, segment.get(n, c, rep), reference.get(n, c, rep));
      }
    }
  }
}

const seeds = [
  vitalSigns('MSG0001'),
  'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|7|P|2.5\rPID|||X1~X2^^^H^MR~~^Y\rNTE|1||a\\F\\b\\S\\c~d^e',
  'MSH#*@!$#APP#FAC\r\nOBX#1#ST#X*a!b#1#10 !F! 20 !S! 30 !T! !R! !E! !X41!\nZZZ#1',
  ' \t\u00a0\ufeffMSH|^~\\&#|A^B~C|||\n\nPV1\rOBX||||^~^^~||~|',
];

t.test('mutated messages: the same refusal or the same fields as the reference', async (t) => {
  const mutation = fc.tuple(fc.nat(), fc.nat(), fc.nat(255)) as fc.Arbitrary<Mutation>;
  fc.assert(
    fc.property(fc.constantFrom(...seeds), fc.array(mutation, { maxLength: 16 }), (seed, muts) => {
      const text = mutate(Buffer.from(seed, 'latin1'), muts).toString('latin1');
      agreesWithReference(text);
    }),
    fuzzParameters(400),
  );
  t.pass('no difference');
});

/** Printable ASCII that is not a letter, digit or space: what MSH-1/MSH-2 may hold. */
const delimiterChars = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'];

t.test('messages built from any delimiters and any field text: the same as the reference', async (t) => {
  const piece = fc.string({
    unit: fc.constantFrom(
      ...delimiterChars,
      'a',
      'Z',
      '1',
      ' ',
      '\t',
      '\r',
      '\n',
      'é',
      '\u2028',
      'MSH',
      'OBX',
    ),
    maxLength: 40,
  });
  let parsed = 0;
  fc.assert(
    fc.property(
      fc.constantFrom('', ' ', '\r\n', '\ufeff', 'x'),
      fc.oneof(
        // Valid encoding characters (4 or 5 distinct ones, then the field separator), mostly.
        fc
          .uniqueArray(fc.constantFrom(...delimiterChars), { minLength: 4, maxLength: 5 })
          .map(([f, ...others]) => `${f}${others.join('')}${f}`),
        fc.string({ unit: fc.constantFrom(...delimiterChars, 'a', '\r'), maxLength: 7 }),
      ),
      fc.array(piece, { maxLength: 8 }),
      (before, encoding, rest) => {
        const text = `${before}MSH${encoding}${rest.join('')}`;
        if (agreesWithReference(text)) parsed++;
      },
    ),
    fuzzParameters(400),
  );
  t.ok(parsed > 0, `no difference (${parsed} of them parsed, the others refused)`);
});

t.test(
  'messages shaped like what monitors and laboratory systems send: the same as the reference',
  async (t) => {
    let parsed = 0;
    fc.assert(
      fc.property(realisticMessage, (text) => {
        if (agreesWithReference(text)) parsed++;
      }),
      fuzzParameters(300),
    );
    t.ok(parsed > 0, `no difference (${parsed} of them parsed, the others refused)`);
  },
);

t.test(
  'empty and blank messages, bad names, a later MSH, CR LF and LF: the same as the reference',
  async (t) => {
    const cases = [
      '',
      '\r\n\r',
      '   ',
      'MSH|^~\\&',
      'MSH|^~\\&|A\r\nPV1\nOBX|1\r\rNTE|||x',
      'MSH|^~\\&|A\rOB|1',
      'MSH|^~\\&|A\robx|1',
      'MSH|^~\\&|A\rOBXX|1',
      'MSH|^~\\&|A\r1BX|1',
      'MSH|^~\\&|A\rOB-|1',
      'MSH|^~\\&|A\rZ99',
      // A later segment named MSH is read like any other (only the header's MSH-1 is the separator).
      'MSH!.`}!\rMSH',
      'MSH|^~\\&|A\rMSH|B|C^D',
    ];
    t.same(
      cases.filter((text) => differences(text).length > 0),
      [],
    );
  },
);

t.test(
  'the leading white space stripped from the MSH line is what JavaScript calls white space',
  async (t) => {
    const differ: number[] = [];
    for (let code = 0; code < 0x10000; code++) {
      if (code === 0x0a || code === 0x0d) continue;
      const text = `${String.fromCharCode(code)}MSH|^~\\&|A`;
      if (differences(text).length > 0) differ.push(code);
    }
    t.same(differ, [], 'every UTF-16 code unit before MSH is stripped or kept as the reference does');
  },
);
