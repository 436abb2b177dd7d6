import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CodedObservation, checkRecord, type DeviceReading, validateConfig } from '@attache/core';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';
import t, { type Test } from 'tap';
import { MemoryTokenizer } from './fixtures/memory-tokenizer.js';

const config = validateConfig({
  version: 1,
  gateway: { id: 'gw-lab' },
  devices: [
    {
      id: 'sysmex-xn',
      adapter: 'rs232',
      port: { path: '/dev/attache/lab0' },
      format: {
        kind: 'astm',
        codes: { WBC: { code: '6690-2', unit: '10*3/uL' } },
        units: { 'K/mm3': '10*3/uL' },
        comments: true,
      },
    },
    {
      id: 'monitor-icu',
      adapter: 'ethernet',
      endpoint: { mode: 'listen', port: 2575, allow: ['10.0.0.0/8'] },
      format: { kind: 'hl7-mllp' },
    },
    {
      id: 'fridge-3',
      adapter: 'modbus',
      bus: { transport: 'tcp', host: '10.1.1.5' },
      profile: 'fridge',
    },
    {
      id: 'regex-dev',
      adapter: 'rs232',
      port: { path: '/dev/attache/bed1' },
      format: {
        kind: 'regex-line',
        pattern: '^S(?<spo2>\\d+|-+) P(?<pr>\\d+|-+) ID(?<pid>\\S+)$',
        fields: {
          spo2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
          pr: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
        },
        patientIdField: 'pid',
      },
    },
  ],
  modbusProfiles: {
    fridge: {
      registers: [{ name: 'temp', ref: '30001', type: 'int16', scale: 0.1, code: 'TEMP', unit: 'Cel' }],
    },
  },
});

function setup(t: Test) {
  const dir = t.testdir({ boot_id: '3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0e4f86\n', synchronized: '' });
  writeFileSync(join(dir, 'synchronized'), '');
  const tokenizer = new MemoryTokenizer();
  const clock = new SystemClock({ syncFile: join(dir, 'synchronized'), bootIdFile: join(dir, 'boot_id') });
  return {
    tokenizer,
    normalizer: new ReadingNormalizer({ gatewayId: 'gw-lab', devices: config.devices, tokenizer, clock }),
  };
}

function coded(
  deviceId: string,
  adapter: DeviceReading['adapter'],
  observations: CodedObservation[],
  extra: Partial<DeviceReading> = {},
): DeviceReading {
  return {
    deviceId,
    adapter,
    protocol: adapter === 'rs232' ? 'astm' : adapter === 'modbus' ? 'modbus-tcp' : 'hl7-mllp',
    receivedAt: Date.UTC(2026, 10, 24, 9, 0, 0),
    monotonicMs: 5000,
    fields: [],
    markers: [],
    raw: Buffer.from('frame'),
    observations,
    ...extra,
  };
}

const result = (code: string, value: CodedObservation['value'], unit: string): CodedObservation => ({
  code,
  system: 'LOCAL',
  value,
  unit,
  status: 'valid',
  source: code,
});

t.test('ASTM results: configured codes win, units become UCUM, lab details are kept', async (t) => {
  const { normalizer, tokenizer } = setup(t);
  const draft = await normalizer.normalize(
    coded(
      'sysmex-xn',
      'rs232',
      [
        {
          ...result('WBC', 7.2, '10^3/uL'),
          referenceRange: '4.0-10.0',
          abnormalFlags: ['N'],
          observedAt: '2026-11-24T08:55:00',
          comments: ['smear reviewed'],
        },
        { ...result('RBC', 4.61, '10^6/uL'), abnormalFlags: [] },
        result('PLT', 250, 'K/mm3'),
        result('MCHC', 33.1, 'g/dl'),
        result('FLAG', 'Blasts?', ''),
      ],
      {
        patientId: 'MRN-0048213',
        specimenId: 'SPEC-99812',
        instrument: { name: 'XN-550', version: '00-18', serial: '11001' },
      },
    ),
  );
  t.same(
    draft.observations.map((o) => [o.code, o.system, o.value, o.unit]),
    [
      ['6690-2', 'LOINC', 7.2, '10*3/uL'],
      ['RBC', 'LOCAL', 4.61, '10*6/uL'],
      ['PLT', 'LOCAL', 250, '10*3/uL'],
      ['MCHC', 'LOCAL', 33.1, 'g/dL'],
      ['FLAG', 'LOCAL', 'Blasts?', '1'],
    ],
    'the WBC code comes from config; the device spellings are mapped to UCUM',
  );
  t.match(draft.observations[0], {
    source: 'WBC',
    referenceRange: '4.0-10.0',
    abnormalFlags: ['N'],
    observedAt: '2026-11-24T08:55:00',
    comments: ['smear reviewed'],
  });
  t.notOk('abnormalFlags' in (draft.observations[1] ?? {}), 'an empty flag list is omitted');
  t.same(draft.instrument, { name: 'XN-550', version: '00-18', serial: '11001' });
  t.match(draft.patient?.token, /^pt_/);
  t.match(draft.specimen?.token, /^pt_/);
  t.not(draft.patient?.token, draft.specimen?.token);
  const text = JSON.stringify(draft);
  t.notMatch(text, /MRN-0048213|SPEC-99812/, 'neither identifier is in the record');
  t.same([...tokenizer.tokens.keys()].sort(), ['MRN-0048213', 'specimen:SPEC-99812']);
  t.same(checkRecord({ ...draft, seq: 1 }), [], 'a valid record');
});

t.test('HL7 OBX observations: MDC unit codes and reference ids become UCUM; paths are kept', async (t) => {
  const { normalizer } = setup(t);
  const obx = (code: string, mdc: number, value: number, unit: string, path: string): CodedObservation => ({
    code,
    system: 'MDC',
    mdc,
    value,
    unit,
    status: 'valid',
    path,
  });
  const draft = await normalizer.normalize(
    coded('monitor-icu', 'ethernet', [
      obx('MDC_PRESS_BLD_NONINV_SYS', 150021, 120, '266016', '1.1.1.1'),
      obx('MDC_PRESS_BLD_NONINV_DIA', 150022, 80, 'MDC_DIM_MMHG', '1.1.1.2'),
      obx('MDC_PULS_OXIM_SAT_O2', 150456, 97, '262688', '1.2.1.1'),
      obx('MDC_ECG_HEART_RATE', 147842, 72, 'MDC_DIM_BEAT_PER_MIN', '1.3.1.1'),
      obx('MDC_TEMP_BODY', 150364, 37.1, '268192', '1.4.1.1'),
    ]),
  );
  t.same(
    draft.observations.map((o) => [o.code, o.mdc, o.unit, o.path]),
    [
      ['MDC_PRESS_BLD_NONINV_SYS', 150021, 'mm[Hg]', '1.1.1.1'],
      ['MDC_PRESS_BLD_NONINV_DIA', 150022, 'mm[Hg]', '1.1.1.2'],
      ['MDC_PULS_OXIM_SAT_O2', 150456, '%', '1.2.1.1'],
      ['MDC_ECG_HEART_RATE', 147842, '/min', '1.3.1.1'],
      ['MDC_TEMP_BODY', 150364, 'Cel', '1.4.1.1'],
    ],
  );
  t.same(checkRecord({ ...draft, seq: 1 }), []);
});

t.test('an event with no observations is a valid record', async (t) => {
  const { normalizer } = setup(t);
  const draft = await normalizer.normalize(
    coded('monitor-icu', 'ethernet', [], { event: { type: 'hl7.adt-a01', detail: { segments: 4 } } }),
  );
  t.same(draft.observations, []);
  t.same(draft.event, { type: 'hl7.adt-a01', detail: { segments: 4 } });
  t.same(checkRecord({ ...draft, seq: 1 }), []);
});

t.test('Modbus readings keep their configured UCUM units and register paths', async (t) => {
  const { normalizer } = setup(t);
  const draft = await normalizer.normalize(
    coded('fridge-3', 'modbus', [{ ...result('TEMP', 4.2, 'Cel'), path: 'ir:0' }]),
  );
  t.same(draft.observations, [
    { code: 'TEMP', system: 'LOCAL', value: 4.2, unit: 'Cel', status: 'valid', source: 'TEMP', path: 'ir:0' },
  ]);
});

t.test('regex-line readings map named groups like kv-line fields, with the patient tokenized', async (t) => {
  const { normalizer } = setup(t);
  const draft = await normalizer.normalize({
    ...coded('regex-dev', 'rs232', []),
    protocol: 'regex-line',
    observations: undefined,
    fields: [
      { name: 'spo2', value: '96' },
      { name: 'pr', value: '---' },
      { name: 'pid', value: 'A12345' },
    ],
  } as DeviceReading);
  t.same(
    draft.observations.map((o) => [o.code, o.value, o.status]),
    [
      ['MDC_PULS_OXIM_SAT_O2', 96, 'valid'],
      ['MDC_PULS_OXIM_PULS_RATE', null, 'unavailable'],
    ],
  );
  t.match(draft.patient?.token, /^pt_/);
  t.notMatch(JSON.stringify(draft), /A12345/);
});

t.test(
  'a coded-protocol device that sends no observations is malformed; dashes are no identifier',
  async (t) => {
    const { normalizer } = setup(t);
    await t.rejects(
      normalizer.normalize({ ...coded('sysmex-xn', 'rs232', []), observations: undefined } as DeviceReading),
      { code: 'ATTACHE_MALFORMED', message: /sysmex-xn sent a reading without observations/ },
    );
    const draft = await normalizer.normalize(
      coded('sysmex-xn', 'rs232', [result('WBC', 5, '10^3/uL')], { patientId: '---', specimenId: '' }),
    );
    t.equal(draft.patient, undefined);
    t.equal(draft.specimen, undefined);
  },
);
