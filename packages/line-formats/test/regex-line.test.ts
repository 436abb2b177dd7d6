import { RegexLineParser } from '@attache/line-formats';
import t from 'tap';

t.test('regex-line: named groups become fields, time → deviceTime, no match is malformed', async (t) => {
  const parser = new RegexLineParser({
    kind: 'regex-line',
    pattern: '^(?<time>\\S+ \\S+) SpO2 (?<spo2>\\d+|-+)( PR (?<pr>\\d+))?$',
    timestamp: 'DD/MM/YY HH:mm:ss',
    fields: { spo2: { code: 'X', unit: '%', system: 'MDC', type: 'number', questionableWhenNonZero: false } },
    minFields: 1,
  });
  t.same(parser.parse('27/06/24 10:15:00 SpO2 097 PR 72'), {
    fields: [
      { name: 'spo2', value: '097' },
      { name: 'pr', value: '72' },
    ],
    deviceTime: '2024-06-27T10:15:00',
  });
  t.same(
    parser.parse('27/06/24 10:15:00 SpO2 ---').fields,
    [{ name: 'spo2', value: '---' }],
    'unmatched groups left out',
  );
  t.throws(() => parser.parse('SpO2 97'), {
    code: 'ATTACHE_MALFORMED',
    message: 'line does not match the pattern',
  });
  t.throws(() => parser.parse('31/02/24 10:15:00 SpO2 97'), { code: 'ATTACHE_MALFORMED' }, '31 February');
  t.throws(() => parser.parse('27/06/24 10:15:00 SpO2 9\x01'), { code: 'ATTACHE_MALFORMED' });
  t.throws(() => new RegexLineParser({ kind: 'regex-line', pattern: '(', fields: {}, minFields: 1 }), {
    code: 'ATTACHE_CONFIG_INVALID',
    issues: [{ path: '/format/pattern' }],
  });
});

t.test(
  'regex-line: a hostile line is malformed without stalling, a backtracking pattern is refused',
  async (t) => {
    const field = {
      code: 'X',
      unit: '1',
      system: 'MDC',
      type: 'number',
      questionableWhenNonZero: false,
    } as const;
    // Matching this pattern against the line below takes minutes on a backtracking engine.
    const parser = new RegexLineParser({
      kind: 'regex-line',
      pattern: '^(?<a>.*),(?<b>.*),(?<c>.*);$',
      fields: { a: field, b: field, c: field },
      minFields: 1,
    });
    t.throws(() => parser.parse(`${'1,'.repeat(8000)}x`), {
      code: 'ATTACHE_MALFORMED',
      message: 'line does not match the pattern',
    });
    t.same(parser.parse('1,2,3;').fields, [
      { name: 'a', value: '1' },
      { name: 'b', value: '2' },
      { name: 'c', value: '3' },
    ]);
    t.throws(
      () =>
        new RegexLineParser({
          kind: 'regex-line',
          pattern: '(?<a>\\d+)(?=%)',
          fields: { a: field },
          minFields: 1,
        }),
      {
        code: 'ATTACHE_CONFIG_INVALID',
        issues: [{ path: '/format/pattern', message: /^cannot be matched in linear time/ }],
      },
    );
  },
);
