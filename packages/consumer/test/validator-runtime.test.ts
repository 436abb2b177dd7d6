import t from 'tap';
import { dateTime, ucs2length } from '../src/validator-runtime.js';

t.test('date-time: RFC 3339 with a zone, real dates, leap seconds only at 23:59:60 UTC', async (t) => {
  for (const ok of [
    '2026-11-24T06:20:54.101Z',
    '2024-02-29T00:00:00+01:00',
    '2026-12-31T23:59:60Z',
    '2026-12-31T18:59:60-05:00',
    '2026-01-01 00:00:00z',
  ]) {
    t.ok(dateTime.validate(ok), ok);
  }
  for (const bad of [
    '2026-11-24T06:20:54',
    '2026-02-29T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-11-24',
    '2026-11-24T24:00:00Z',
    '2026-11-24T12:00:60Z',
    '2026-11-24T00:00:00+24:00',
    'x',
  ]) {
    t.notOk(dateTime.validate(bad), bad);
  }
});

t.test('ucs2length counts code points, as JSON Schema lengths do', async (t) => {
  t.equal(ucs2length('abc'), 3);
  t.equal(ucs2length('SpO₂'), 4);
  t.equal(ucs2length('a😀b'), 3, 'a surrogate pair is one');
  t.equal(ucs2length('\ud83d'), 1, 'a lone high surrogate at the end');
  t.equal(ucs2length('\ud83dx'), 2, 'a high surrogate not followed by a low one');
});
