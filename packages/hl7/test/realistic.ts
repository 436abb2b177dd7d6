import fc from 'fast-check';

/**
 * Messages shaped like what monitors and laboratory systems send, which random characters seldom
 * build: MSH-2 with the v2.7 truncation character or without the sub-component separator, other
 * delimiter sets, every escape sequence (`\F\ \S\ \T\ \R\ \E\ \Xhh..\ \.br\`, unknown and unclosed
 * ones) written with the message's own escape character, repetitions in OBX-5, empty trailing fields,
 * segments ending in CR, CR LF or LF, a batch envelope (FHS/BHS … BTS/FTS), a second MSH, a very
 * long segment, and text beyond ASCII (Latin-1 letters, CJK, a character outside the BMP, C1).
 */
export const realisticMessage: fc.Arbitrary<string> = fc
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
