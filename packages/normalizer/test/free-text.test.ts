import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AlarmDraft,
  type CodedObservation,
  checkRecord,
  type DeviceReading,
  validateConfig,
} from '@attache/core';
import { REDACTED, ReadingNormalizer, SystemClock } from '@attache/normalizer';
import t, { type Test } from 'tap';
import { MemoryTokenizer } from './fixtures/memory-tokenizer.js';

const listen = { mode: 'listen', port: 2575, allow: ['10.0.0.0/8'] };
const config = validateConfig({
  version: 1,
  gateway: { id: 'gw-icu' },
  devices: [
    { id: 'mon-off', adapter: 'ethernet', endpoint: listen, format: { kind: 'hl7-mllp' } },
    { id: 'mon-on', adapter: 'ethernet', endpoint: listen, format: { kind: 'hl7-mllp', freeText: true } },
    { id: 'lab-off', adapter: 'rs232', port: { path: '/dev/attache/lab0' }, format: { kind: 'astm' } },
    {
      id: 'lab-on',
      adapter: 'rs232',
      port: { path: '/dev/attache/lab1' },
      format: { kind: 'astm', comments: true },
    },
  ],
});

function setup(t: Test): ReadingNormalizer {
  const dir = t.testdir({ boot_id: '3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0e4f86\n' });
  writeFileSync(join(dir, 'synchronized'), '');
  const clock = new SystemClock({ syncFile: join(dir, 'synchronized'), bootIdFile: join(dir, 'boot_id') });
  return new ReadingNormalizer({
    gatewayId: 'gw-icu',
    devices: config.devices,
    tokenizer: new MemoryTokenizer(),
    clock,
  });
}

const secrets = ['Quimby', 'QUIMBY', 'Hortense', 'Welby', 'Kelly', '555-0100', 'MRN-99817', '99817', '1947'];

function reading(deviceId: string): DeviceReading {
  const spo2: CodedObservation = {
    code: '0002-4bb8',
    system: 'MDC',
    mdc: 150456,
    deviceCode: { code: '0002-4bb8', system: 'MDIL' },
    value: 88,
    unit: '262688',
    status: 'valid',
    comments: ['checked with Dr Welby, probe moved'],
  };
  const note: CodedObservation = {
    code: 'NOTE',
    system: 'LOCAL',
    value: 'pt QUIMBY HORTENSE anxious, nurse Kelly ph 555-0100',
    unit: '',
    status: 'valid',
    freeText: true,
  };
  const alarm: AlarmDraft = {
    code: 'MDIL-ALERT',
    system: 'LOCAL',
    origin: 'vendor',
    priority: 'high',
    parameter: {
      code: 'MDC_PULS_OXIM_SAT_O2',
      system: 'MDC',
      mdc: 150456,
      value: 88,
      unit: '262688',
      status: 'valid',
    },
    text: '***SpO2 LOW 88 < 90 Quimby',
  };
  return {
    deviceId,
    adapter: deviceId.startsWith('lab') ? 'rs232' : 'ethernet',
    protocol: deviceId.startsWith('lab') ? 'astm' : 'hl7-mllp',
    receivedAt: Date.UTC(2026, 10, 24, 9, 0, 0),
    monotonicMs: 5000,
    fields: [],
    markers: [],
    raw: Buffer.from('MSH'),
    observations: [spo2, note],
    notes: ['Collected 03/12/1947 by Hortense, MRN 99817'],
    people: ['QUIMBY', 'HORTENSE', 'WELBY', '555-0100'],
    patientId: 'MRN-99817',
    alarms: [alarm],
    event: { type: 'alarm', detail: { alarms: 1 } },
  };
}

t.test('free text off (the default): no comment, note, text value or alarm text is kept', async (t) => {
  const normalizer = setup(t);
  for (const id of ['mon-off', 'lab-off']) {
    const draft = await normalizer.normalize(reading(id));
    t.same(
      draft.observations.map((o) => [o.code, o.value, o.comments]),
      [['MDC_PULS_OXIM_SAT_O2', 88, undefined]],
      `${id}: the text value is left out, the SpO2 keeps no comment`,
    );
    t.equal(draft.notes, undefined, 'no notes');
    t.match(draft.alarms, [{ code: 'MDIL-ALERT', priority: 'high', parameter: { value: 88, unit: '%' } }]);
    t.equal(draft.alarms?.[0]?.text, undefined, 'the alarm keeps its coded parts, not its text');
    const text = JSON.stringify(draft);
    for (const secret of secrets) t.notMatch(text, secret, `${secret} is not in the record`);
    t.same(checkRecord({ ...draft, seq: 1 }), [], 'a valid record');
  }
});

t.test('free text on: every text passes the de-identification step', async (t) => {
  const normalizer = setup(t);
  for (const id of ['mon-on', 'lab-on']) {
    const draft = await normalizer.normalize(reading(id));
    const [spo2, note] = draft.observations;
    t.same(
      spo2?.comments,
      [`checked with Dr ${REDACTED}, probe moved`],
      `${id}: the comment, a name removed`,
    );
    t.equal(note?.value, `pt ${REDACTED} anxious, nurse ${REDACTED} ph ${REDACTED}`, 'the text value');
    // `MRN` is a word of the patient id `MRN-99817`: removed with it.
    t.same(draft.notes, [`Collected ${REDACTED} by ${REDACTED}, ${REDACTED}`], 'the notes');
    t.equal(draft.alarms?.[0]?.text, `***SpO2 LOW 88 < 90 ${REDACTED}`, 'the alarm text keeps its phrase');
    const text = JSON.stringify(draft);
    for (const secret of secrets) t.notMatch(text, secret, `${secret} is not in the record`);
    t.notMatch(text, /people/, 'the names used for the step are not stored');
    t.same(checkRecord({ ...draft, seq: 1 }), [], 'a valid record');
  }
});

t.test(
  'one code per quantity: a vendor MDC code becomes the reference id, the device code stays beside',
  async (t) => {
    const normalizer = setup(t);
    const draft = await normalizer.normalize(reading('mon-off'));
    t.match(draft.observations[0], {
      code: 'MDC_PULS_OXIM_SAT_O2',
      system: 'MDC',
      mdc: 150456,
      deviceCode: { code: '0002-4bb8', system: 'MDIL' },
      unit: '%',
    });
    const unknown = reading('mon-off');
    unknown.observations = [
      { code: '0002-ffff', system: 'MDC', mdc: 196607, value: 1, unit: '', status: 'valid' },
    ];
    const other = await normalizer.normalize(unknown);
    t.match(other.observations[0], { code: '196607', mdc: 196607 }, 'a code the table lacks: its number');
  },
);

t.test('a kv-line text field is free text the config keeps: de-identified too', async (t) => {
  const dir = t.testdir({ boot_id: '3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0e4f86\n' });
  writeFileSync(join(dir, 'synchronized'), '');
  const { devices } = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      {
        id: 'ox',
        adapter: 'rs232',
        port: { path: '/dev/attache/ox' },
        format: {
          kind: 'kv-line',
          fields: { NOTE: { code: 'NOTE', system: 'LOCAL', unit: '1', type: 'text' } },
          patientIdField: 'PID',
        },
      },
    ],
  });
  const normalizer = new ReadingNormalizer({
    gatewayId: 'gw',
    devices,
    tokenizer: new MemoryTokenizer(),
    clock: new SystemClock({ syncFile: join(dir, 'synchronized'), bootIdFile: join(dir, 'boot_id') }),
  });
  const fields = [
    { name: 'PID', value: 'A12345' },
    { name: 'NOTE', value: 'for A12345 call Dr Welby' },
  ];
  const draft = await normalizer.normalize({
    deviceId: 'ox',
    adapter: 'rs232',
    protocol: 'kv-line',
    receivedAt: 0,
    monotonicMs: 1,
    fields,
    markers: [],
    raw: Buffer.from(''),
  });
  t.equal(draft.observations[0]?.value, `for ${REDACTED} call Dr ${REDACTED}`);
});
