import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkRecord,
  type DeviceConfig,
  type DeviceField,
  type DeviceReading,
  type RecordDraft,
  validateConfig,
} from '@attache/core';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';
import t, { type Test } from 'tap';
import { MemoryTokenizer } from './fixtures/memory-tokenizer.js';

const bootId = '3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0e4f86';

const noninFields = {
  SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
  HR: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
};
const devices = validateConfig({
  version: 1,
  gateway: { id: 'gw-ward4' },
  devices: [
    {
      id: 'spo2-bed7',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB0' },
      format: {
        kind: 'kv-line',
        fields: noninFields,
        flags: { '*': 'event', F: 'fast-response' },
        minFields: 2,
      },
    },
    {
      id: 'nonin-9847',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB1' },
      format: { kind: 'kv-line', fields: noninFields, flags: { B: 'breath' }, timestamp: 'HH:mm:ss' },
    },
    {
      id: 'masimo-bed3',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB2' },
      format: {
        kind: 'kv-line',
        timestamp: 'MM/DD/YY HH:mm:ss',
        fields: {
          SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
          BPM: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
          PI: { code: 'MDC_PULS_OXIM_PERF_REL', unit: '%' },
          SPCO: { code: 'SPCO', system: 'LOCAL', unit: '%' },
          SPMET: { code: 'SPMET', system: 'LOCAL', unit: '%' },
          PIDELTA: { code: 'PIDELTA', system: 'LOCAL', unit: '%' },
          PVI: { code: 'PVI', system: 'LOCAL', unit: '%' },
          ALARM: { code: 'ALARM', system: 'LOCAL', unit: '1', type: 'hex', questionableWhenNonZero: true },
          EXC: { code: 'EXC', system: 'LOCAL', unit: '1', type: 'hex', questionableWhenNonZero: true },
        },
      },
    },
    {
      id: 'masimo-masked',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB5' },
      format: {
        kind: 'kv-line',
        fields: {
          SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
          EXC: { code: 'EXC', system: 'LOCAL', unit: '1', type: 'hex', questionableMask: 'FFF7FF' },
          STAT: { code: 'STAT', system: 'LOCAL', unit: '1', questionableMask: '0x4' },
        },
      },
    },
    {
      id: 'monitor-pid',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB3' },
      format: {
        kind: 'kv-line',
        fields: { ...noninFields, NOTE: { code: 'NOTE', system: 'LOCAL', unit: '1', type: 'text' } },
        patientIdField: 'PID',
      },
    },
    {
      id: 'monitor-raw',
      adapter: 'rs232',
      port: { path: '/dev/ttyUSB4' },
      format: { kind: 'kv-line', fields: noninFields, patientIdField: 'PID' },
      rawFrames: true,
    },
  ],
}).devices as DeviceConfig[];

/** A DeviceReading as the rs232 adapter builds it from one line (parseKvLine's output shape). */
function reading(
  deviceId: string,
  line: string,
  parsed: { fields: [string, string][]; markers?: string[]; deviceTime?: string },
): DeviceReading {
  const fields: DeviceField[] = parsed.fields.map(([name, value]) => ({ name, value }));
  return {
    deviceId,
    adapter: 'rs232',
    protocol: 'kv-line',
    receivedAt: Date.UTC(2026, 10, 24, 8, 12, 21, 345),
    monotonicMs: 123456.789,
    fields,
    markers: parsed.markers ?? [],
    ...(parsed.deviceTime === undefined ? {} : { deviceTime: parsed.deviceTime }),
    raw: Buffer.from(line, 'latin1'),
  };
}

function setup(t: Test, options: { synchronized?: boolean } = {}) {
  const dir = t.testdir({ boot_id: `${bootId}\n` });
  const syncFile = join(dir, 'synchronized');
  if (options.synchronized ?? true) writeFileSync(syncFile, '');
  const tokenizer = new MemoryTokenizer();
  const clock = new SystemClock({ syncFile, bootIdFile: join(dir, 'boot_id') });
  const normalizer = new ReadingNormalizer({ gatewayId: 'gw-ward4', devices, tokenizer, clock });
  return { normalizer, tokenizer };
}

function valid(t: Test, draft: RecordDraft): void {
  t.same(checkRecord({ ...draft, seq: 1 }), [], 'the draft is a valid record once it has a seq');
}

t.test('Nonin real-time lines become SpO2 and pulse observations', async (t) => {
  const { normalizer } = setup(t);
  const draft = await normalizer.normalize(
    reading('spo2-bed7', 'SPO2=097 HR=072', {
      fields: [
        ['SPO2', '097'],
        ['HR', '072'],
      ],
    }),
  );
  valid(t, draft);
  t.same(draft, {
    gatewayId: 'gw-ward4',
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: '2026-11-24T08:12:21.345Z',
    clock: { synchronized: true, bootId, monotonicMs: 123456.789 },
    observations: [
      {
        code: 'MDC_PULS_OXIM_SAT_O2',
        system: 'MDC',
        mdc: 150456,
        value: 97,
        unit: '%',
        status: 'valid',
        source: 'SPO2',
      },
      {
        code: 'MDC_PULS_OXIM_PULS_RATE',
        system: 'MDC',
        mdc: 149530,
        value: 72,
        unit: '/min',
        status: 'valid',
        source: 'HR',
      },
    ],
  });
  t.notOk('raw' in draft, 'no raw frame unless rawFrames is on');
  t.notOk('flags' in draft || 'patient' in draft || 'deviceTime' in draft);
});

t.test(
  'dashes mean unavailable; the event marker becomes a flag, unlisted markers are dropped',
  async (t) => {
    const { normalizer } = setup(t);
    const none = await normalizer.normalize(
      reading('spo2-bed7', 'SPO2=--- HR=---', {
        fields: [
          ['SPO2', '---'],
          ['HR', '---'],
        ],
      }),
    );
    valid(t, none);
    t.same(
      none.observations.map((o) => [o.value, o.status]),
      [
        [null, 'unavailable'],
        [null, 'unavailable'],
      ],
    );
    const event = await normalizer.normalize(
      reading('spo2-bed7', 'SPO2=096 HR=071*', {
        fields: [
          ['SPO2', '096'],
          ['HR', '071'],
        ],
        markers: ['*', 'X', '*'],
      }),
    );
    valid(t, event);
    t.same(event.flags, ['event'], 'mapped once, unknown marker X dropped');
  },
);

t.test('Nonin 9847 lines keep the device time and the breath marker', async (t) => {
  const { normalizer } = setup(t);
  const draft = await normalizer.normalize(
    reading('nonin-9847', '14:02:12 SPO2=098 HR=064 B', {
      fields: [
        ['SPO2', '098'],
        ['HR', '064'],
      ],
      markers: ['B'],
      deviceTime: '14:02:12',
    }),
  );
  valid(t, draft);
  t.equal(draft.deviceTime, '14:02:12');
  t.same(draft.flags, ['breath']);
  t.same(
    draft.observations.map((o) => o.value),
    [98, 64],
  );
});

const masimoNoData: [string, string][] = [
  ['SN', '0000070986'],
  ['SPO2', '---%'],
  ['BPM', '---'],
  ['PI', '--.--%'],
  ['SPCO', '--.-%'],
  ['SPMET', '--.-%'],
  ['DESAT', '--'],
  ['PIDELTA', '+--'],
  ['PVI', '---'],
  ['ALARM', '0000'],
  ['EXC', '000000'],
];

t.test('the Masimo no-data line: every value unavailable, unmapped keys dropped', async (t) => {
  const { normalizer } = setup(t, { synchronized: false });
  const line =
    '05/15/07 08:12:21 SN=0000070986 SPO2=---% BPM=--- PI=--.--% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=--- ALARM=0000 EXC=000000';
  const draft = await normalizer.normalize(
    reading('masimo-bed3', line, { fields: masimoNoData, deviceTime: '2007-05-15T08:12:21' }),
  );
  valid(t, draft);
  t.equal(draft.clock.synchronized, false, 'no sync file: not synchronized');
  t.equal(draft.deviceTime, '2007-05-15T08:12:21');
  t.same(
    draft.observations.map((o) => [o.source, o.value, o.status]),
    [
      ['SPO2', null, 'unavailable'],
      ['BPM', null, 'unavailable'],
      ['PI', null, 'unavailable'],
      ['SPCO', null, 'unavailable'],
      ['SPMET', null, 'unavailable'],
      ['PIDELTA', null, 'unavailable'],
      ['PVI', null, 'unavailable'],
      ['ALARM', '0000', 'valid'],
      ['EXC', '000000', 'valid'],
    ],
  );
  const json = JSON.stringify(draft);
  t.notMatch(json, /SN|0000070986|DESAT/, 'the serial number and unmapped keys never appear');
});

t.test('a non-zero Masimo ALARM makes the other valid values questionable', async (t) => {
  const { normalizer } = setup(t);
  const fields: [string, string][] = [
    ['SPO2', '098%'],
    ['BPM', '072'],
    ['PI', '03.60%'],
    ['SPCO', '--.-%'],
    ['PIDELTA', '+05'],
    ['PVI', '-03'],
    ['ALARM', '0002'],
    ['EXC', '000000'],
  ];
  const draft = await normalizer.normalize(
    reading('masimo-bed3', 'masimo', { fields, deviceTime: '2026-11-24T08:12:21' }),
  );
  valid(t, draft);
  t.same(
    draft.observations.map((o) => [o.source, o.value, o.status]),
    [
      ['SPO2', 98, 'questionable'],
      ['BPM', 72, 'questionable'],
      ['PI', 3.6, 'questionable'],
      ['SPCO', null, 'unavailable'],
      ['PIDELTA', 5, 'questionable'],
      ['PVI', -3, 'questionable'],
      ['ALARM', '0002', 'valid'],
      ['EXC', '000000', 'valid'],
    ],
  );
  t.notOk('mdc' in (draft.observations[2] ?? {}), 'no mdc where none is configured');
  const noStatus = await normalizer.normalize(
    reading('masimo-bed3', 'masimo', {
      fields: [
        ['SPO2', '098%'],
        ['ALARM', '----'],
      ],
    }),
  );
  t.same(
    noStatus.observations.map((o) => [o.value, o.status]),
    [
      [98, 'valid'],
      [null, 'unavailable'],
    ],
    'a status word without a value flags nothing',
  );
});

t.test('a status word with a mask: only its bits make the other values questionable', async (t) => {
  const { normalizer } = setup(t);
  const statuses = async (exc: string, stat = '0') => {
    const fields: [string, string][] = [
      ['SPO2', '098%'],
      ['EXC', exc],
      ['STAT', stat],
    ];
    const draft = await normalizer.normalize(reading('masimo-masked', 'masimo', { fields }));
    valid(t, draft);
    return draft.observations.map((o) => o.status);
  };
  t.same(await statuses('000800'), ['valid', 'valid', 'valid'], 'EXC 800 (SET mode) is informational');
  t.same(await statuses('000820'), ['questionable', 'valid', 'valid'], 'EXC 820 (sensor off) is not');
  t.same(await statuses('100000'), ['questionable', 'valid', 'valid'], 'an undocumented high bit counts');
  t.same(await statuses('000000', '6'), ['questionable', 'valid', 'valid'], 'a numeric word: bit 2 set');
  t.same(await statuses('000000', '8'), ['valid', 'valid', 'valid'], 'a numeric word: other bits only');
  t.same(await statuses('000000', '2.5'), ['valid', 'valid', 'valid'], 'a fraction has no bits');
  t.same(await statuses('------'), ['valid', 'unavailable', 'valid'], 'no value flags nothing');
});

t.test('a patient identifier is tokenized and appears nowhere in the draft', async (t) => {
  const { normalizer, tokenizer } = setup(t);
  const line = 'PID=MRN00424242 SPO2=097 HR=072 NOTE=ok';
  const fields: [string, string][] = [
    ['PID', 'MRN00424242'],
    ['SPO2', '097'],
    ['HR', '072'],
    ['NOTE', 'ok'],
  ];
  const first = await normalizer.normalize(reading('monitor-pid', line, { fields }));
  valid(t, first);
  const token = tokenizer.tokens.get('MRN00424242');
  t.ok(token, 'the tokenizer was asked');
  t.same(first.patient, { token });
  t.notMatch(JSON.stringify(first), /MRN00424242|PID/, 'the identifier is not in the draft');
  t.same(first.observations.at(-1), {
    code: 'NOTE',
    system: 'LOCAL',
    value: 'ok',
    unit: '1',
    status: 'valid',
    source: 'NOTE',
  });
  const second = await normalizer.normalize(reading('monitor-pid', line, { fields }));
  t.same(second.patient, first.patient, 'the same patient gets the same token');
  const noPatient = await normalizer.normalize(
    reading('monitor-pid', 'PID=--- SPO2=097 HR=072', {
      fields: [
        ['PID', '---'],
        ['SPO2', '097'],
        ['HR', '072'],
      ],
    }),
  );
  t.notOk('patient' in noPatient, 'dashes: no patient assigned');
});

t.test('rawFrames keeps the frame as base64', async (t) => {
  const { normalizer } = setup(t);
  const line = 'PID=MRN1 SPO2=097 HR=072';
  const draft = await normalizer.normalize(
    reading('monitor-raw', line, {
      fields: [
        ['PID', 'MRN1'],
        ['SPO2', '097'],
        ['HR', '072'],
      ],
    }),
  );
  valid(t, draft);
  t.equal(Buffer.from(draft.raw ?? '', 'base64').toString('latin1'), line);
  t.equal(draft.observations.length, 2, 'the identifier is still not an observation');
});

t.test('readings that cannot be mapped reject with ATTACHE_MALFORMED, naming no value', async (t) => {
  const { normalizer } = setup(t);
  const cases: [string, string, [string, string][]][] = [
    ['unknown device', 'no-such-device', [['SPO2', '097']]],
    [
      'too few known fields',
      'spo2-bed7',
      [
        ['SPO2', '097'],
        ['SN', '1'],
      ],
    ],
    [
      'no known field',
      'nonin-9847',
      [
        ['constructor', '1'],
        ['__proto__', '2'],
      ],
    ],
    [
      'a number that is not a number',
      'spo2-bed7',
      [
        ['SPO2', '9Z7x'],
        ['HR', '072'],
      ],
    ],
    [
      'an empty number',
      'spo2-bed7',
      [
        ['SPO2', ''],
        ['HR', '072'],
      ],
    ],
    [
      'a hex word that is not hex',
      'masimo-bed3',
      [
        ['SPO2', '098%'],
        ['ALARM', '00G2'],
      ],
    ],
    [
      'a key sent twice',
      'spo2-bed7',
      [
        ['SPO2', '097'],
        ['HR', '072'],
        ['SPO2', '098'],
      ],
    ],
  ];
  for (const [name, deviceId, fields] of cases) {
    const err = await normalizer.normalize(reading(deviceId, 'line', { fields })).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    t.equal(err?.code, 'ATTACHE_MALFORMED', name);
    t.notMatch(err?.message ?? '', /9Z7x|00G2/, `${name}: the message carries no value`);
  }
});

t.test('SystemClock reads the boot id once and follows the sync file', async (t) => {
  const dir = t.testdir({ boot_id: `${bootId}\n`, bad_boot_id: 'not a boot id\n' });
  const syncFile = join(dir, 'synchronized');
  const unsynced = new SystemClock({ syncFile, bootIdFile: join(dir, 'boot_id') });
  t.same(unsynced.provenance(5), { synchronized: false, bootId, monotonicMs: 5 });
  writeFileSync(syncFile, '');
  const synced = new SystemClock({ syncFile, bootIdFile: join(dir, 'boot_id') });
  t.same(synced.provenance(7), { synchronized: true, bootId, monotonicMs: 7 });
  writeFileSync(join(dir, 'boot_id'), 'ffffffff-ffff-ffff-ffff-ffffffffffff\n');
  t.equal(synced.provenance(8).bootId, bootId, 'the boot id is read once');
  t.throws(
    () => new SystemClock({ syncFile, bootIdFile: join(dir, 'bad_boot_id') }).provenance(1),
    TypeError,
  );
  t.throws(() => new SystemClock({ syncFile, bootIdFile: join(dir, 'missing') }).provenance(1), {
    code: 'ENOENT',
  });
  t.match(
    new SystemClock({ syncFile }).provenance(1).bootId,
    /^[0-9a-f-]{36}$/,
    'the real boot id by default',
  );
});
