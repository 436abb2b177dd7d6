import type { LiveReading } from '@attache/technician';
import t from 'tap';
import { inPlace, readingLine } from '../src/commands/watch.js';

const reading = (
  deviceId: string,
  value: number | null,
  status: 'valid' | 'unavailable' = 'valid',
): LiveReading => ({
  deviceId,
  capturedAt: '2026-12-04T10:00:05.000Z',
  observations: [
    { code: 'MDC_PULS_OXIM_SAT_O2', name: 'SpO₂', system: 'MDC', value, unit: '%', status },
    {
      code: 'LOCAL_FLAGS',
      name: 'LOCAL_FLAGS',
      system: 'LOCAL',
      value: 3,
      unit: '1',
      status: 'valid',
    },
  ],
});

t.test('one line per reading: time, names, values, units, a status other than valid', async (t) => {
  t.equal(readingLine(reading('spo2-bed7', 97)), 'spo2-bed7  10:00:05  SpO₂ 97 %  LOCAL_FLAGS 3');
  t.equal(
    readingLine(reading('spo2-bed7', null, 'unavailable')),
    'spo2-bed7  10:00:05  SpO₂ — % (unavailable)  LOCAL_FLAGS 3',
  );
});

t.test('on a terminal each device keeps its line, rewritten in place', async (t) => {
  let out = '';
  const show = inPlace((text) => {
    out += text;
  });
  show(reading('a', 97));
  t.equal(out, '\r\x1b[2Ka  10:00:05  SpO₂ 97 %  LOCAL_FLAGS 3\n', 'the first line is drawn');
  out = '';
  show(reading('b', 95));
  const clear = '\r\x1b[2K';
  t.equal(
    out,
    `\x1b[1A${clear}a  10:00:05  SpO₂ 97 %  LOCAL_FLAGS 3\n${clear}b  10:00:05  SpO₂ 95 %  LOCAL_FLAGS 3\n`,
    'up one line, both redrawn',
  );
  out = '';
  show(reading('a', 90));
  t.equal(
    out,
    `\x1b[2A${clear}a  10:00:05  SpO₂ 90 %  LOCAL_FLAGS 3\n${clear}b  10:00:05  SpO₂ 95 %  LOCAL_FLAGS 3\n`,
    'a new value replaces the old line',
  );
});
