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
