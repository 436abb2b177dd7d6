import fc from 'fast-check';

/**
 * A message shaped like what monitors and laboratory systems send, which random characters seldom
 * build: MSH-2 with the v2.7 truncation character or without the sub-component separator, other
 * delimiter sets, every escape sequence (`\F\ \S\ \T\ \R\ \E\ \Xhh..\ \.br\`, unknown and unclosed
 * ones) written with the message's own escape character, repetitions in OBX-5, empty trailing fields,
 * segments ending in CR, CR LF or LF, a batch envelope (FHS/BHS … BTS/FTS), a second MSH, a very
 * long segment, and text beyond ASCII (Latin-1 letters, CJK, a character outside the BMP, C1).
 */
const oneMessage: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom(
      { f: '|', c: '^', r: '~', e: '\\', s: '&', msh2: '^~\\&' },
      { f: '|', c: '^', r: '~', e: '\\', s: '&', msh2: '^~\\&#' },
      { f: '|', c: '^', r: '~', e: '\\', s: '&', msh2: '^~\\' },
      { f: '|', c: '^', r: '~', e: '\\', s: '&', msh2: '^~\\&#$' },
      { f: '#', c: '*', r: '@', e: '!', s: '$', msh2: '*@!$' },
      { f: '|', c: '^', r: '~', e: '\\', s: '&', msh2: '^~&\\' },
    ),
    fc.constantFrom('\r', '\r\n', '\n'),
    fc.boolean(),
    fc.nat(),
  )
  .chain(([d, eol, mixedEnds, seed]) => {
    const escaped = (code: string) => `${d.e}${code}${d.e}`;
    const text = fc.constantFrom(
      'a',
      '120',
      '36.8',
      ' ',
      'é',
      'ü',
      'ÿ',
      '中',
      '😀',
      '\u0085',
      d.c,
      d.r,
      d.s,
      escaped('F'),
      escaped('S'),
      escaped('T'),
      escaped('R'),
      escaped('E'),
      escaped('X0D0A'),
      escaped('X41'),
      escaped('X4'),
      escaped('X'),
      escaped('.br'),
      escaped('H'),
      escaped('Zvendor'),
      `${d.e}F`,
      d.e,
    );
    const field = fc.oneof(
      { weight: 3, arbitrary: fc.constant('') },
      { weight: 6, arbitrary: fc.string({ unit: text, maxLength: 8 }) },
      {
        weight: 1,
        arbitrary: fc.string({ unit: text, minLength: 1, maxLength: 3 }).map((s) => s.repeat(2000)),
      },
    );
    const obx5 = fc
      .array(fc.string({ unit: text, maxLength: 4 }), { minLength: 1, maxLength: 4 })
      .map((reps) => reps.join(d.r));
    const segment = fc.oneof(
      fc
        .tuple(
          fc.constantFrom('PID', 'PV1', 'OBR', 'NTE', 'ZZZ', 'MSH', 'BTS', 'FTS'),
          fc.array(field, { maxLength: 14 }),
        )
        .map(([name, fields]) => [name, ...fields].join(d.f)),
      fc
        .tuple(fc.array(field, { minLength: 3, maxLength: 3 }), obx5, fc.array(field, { maxLength: 12 }))
        .map(([head, value, tail]) => ['OBX', '1', 'NM', ...head.slice(1), value, ...tail].join(d.f)),
    );
    const msh = fc
      .array(field, { maxLength: 18 })
      .map((fields) =>
        [`MSH${d.f}${d.msh2}`, 'MON', 'ICU', 'LIS', 'HOSP', '20260124120501', '', 'ORU^R01', ...fields].join(
          d.f,
        ),
      );
    const envelope = fc.oneof(
      { weight: 6, arbitrary: fc.constant('') },
      { weight: 1, arbitrary: fc.constantFrom(`FHS${d.f}${d.msh2}${d.f}MON`, `BHS${d.f}${d.msh2}${d.f}MON`) },
    );
    return fc
      .tuple(envelope, msh, fc.array(segment, { maxLength: 8 }), fc.constantFrom('', eol))
      .map(([head, first, rest, last]) => {
        const ends = ['\r', '\r\n', '\n'];
        const lines = [...(head === '' ? [] : [head]), first, ...rest];
        return (
          lines
            .map((line, i) =>
              i === lines.length - 1 ? line : `${line}${mixedEnds ? ends[(seed + i) % 3] : eol}`,
            )
            .join('') + last
        );
      });
  });

/** What {@link multiPatientMessage} built: each patient's PID-3 ID and its OBX-5 values, in order. */
export interface MultiPatientModel {
  patients: { id: string; values: string[] }[];
}

/**
 * An ORU^R01 as a laboratory analyser batches it: MSH, maybe SFT, then PATIENT_RESULT groups, each a
 * PID (from a few patients, so one may come back), maybe an NTE and a PV1, then orders (ORC, OBR)
 * with OBXs (maybe none) and their NTEs; with the model of which values are whose.
 */
export const multiPatientMessage: fc.Arbitrary<[MultiPatientModel, string]> = fc
  .array(
    fc.tuple(
      fc.constantFrom('MRN-01', 'MRN-02', 'MRN-03', 'MRN-04'),
      fc.boolean(),
      fc.array(fc.array(fc.integer({ min: 0, max: 999 }), { maxLength: 3 }), { minLength: 1, maxLength: 3 }),
    ),
    { minLength: 1, maxLength: 5 },
  )
  .chain((groups) => fc.tuple(fc.constant(groups), fc.boolean(), fc.constantFrom('\r', '\n', '\r\n')))
  .map(([groups, sft, eol]) => {
    const byId = new Map<string, string[]>();
    const lines = ['MSH|^~\\&|LAB|L|LIS|H|20260124120501||ORU^R01^ORU_R01|B1|P|2.5'];
    if (sft) lines.push('SFT|Vendor|1.0|Analyser');
    for (const [id, visit, orders] of groups) {
      const values = byId.get(id) ?? [];
      byId.set(id, values);
      lines.push(`PID|1||${id}^^^H^MR||NAME${id}^GIVEN`);
      if (visit) lines.push(`NTE|1||note on ${id}`, 'PV1||O|LAB');
      for (const [o, results] of orders.entries()) {
        lines.push(`ORC|RE|O${o}`, `OBR|${o + 1}|S${o}|S${o}|CBC^Blood count^L`);
        for (const [n, value] of results.entries()) {
          lines.push(`OBX|${n + 1}|NM|T${n}^Test^L||${value}|g/L|||||F`, `NTE|1||about ${value}`);
          values.push(String(value));
        }
      }
    }
    const model = { patients: [...byId].map(([id, values]) => ({ id, values })) };
    return [model, lines.join(eol)];
  });

/**
 * {@link oneMessage}s mostly, and some {@link multiPatientMessage}s (several PATIENT_RESULT groups),
 * so that parser and ACK are checked on batched laboratory results too.
 */
export const realisticMessage: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: oneMessage },
  { weight: 1, arbitrary: multiPatientMessage.map(([, text]) => text) },
);
