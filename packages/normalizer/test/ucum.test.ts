import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CodedObservation,
  checkRecord,
  type LogFn,
  type Logger,
  nullLogger,
  validateConfig,
} from '@attache/core';
import { checkConfigUnits, isUcum, ReadingNormalizer, SystemClock, ucumProblem } from '@attache/normalizer';
import ucum from '@lhncbc/ucum-lhc';
import t from 'tap';
import { MemoryTokenizer } from './fixtures/memory-tokenizer.js';

const units = [
  ...['%', '/min', 'mm[Hg]', '10*3/uL', '10*6/uL', '10*9/L', 'Cel', '[degF]', '1', 'g/dL', 'mg/dL', '[IU]/L'],
  ...['meq/L', '{beats}/min', 'cm[H2O]', 'mmol/L', 'umol/L', 'kPa', 'hPa', 's', 'ms', 'fL', 'pg', 'kg/m2'],
  ...['s-1', 'mL/(kg.min)', 'ug/(kg.min)', 'mL/s', 'L/min', '%{HbA1c}', '{count}', 'dB', '[ppm]', '[pH]'],
  ...['mosm/kg', '/[HPF]', '[in_i]', '[lb_av]', 'kcal', 'mbar', 'U/L', 'mmol/mol', "'", '10.L/(min.m2)'],
  ...['percent', 'bpm', 'mmHg', 'degC', 'pH', 'K/uL', 'x', '%\xff', 'Kk', '((m))', 'm.', '.m', 'm//s'],
  ...['{', '}', 'm{a', '/', '', 'mm Hg', 'beats/min', 'mEq/L', 'IU/L', 'sec'],
];

t.test('the UCUM check agrees with the NLM UCUM library on every unit tried', async (t) => {
  const lhc = ucum.UcumLhcUtils.getInstance();
  for (const unit of units) {
    const theirs = lhc.validateUnitString(unit, true).status === 'valid';
    t.equal(isUcum(unit), theirs, `${JSON.stringify(unit)}: ${theirs ? 'UCUM' : 'not UCUM'}`);
  }
  t.notOk(isUcum(`m${'.m'.repeat(40)}`), 'longer than 64 characters: refused');
  t.notOk(isUcum(`${'('.repeat(20)}m${')'.repeat(20)}`), 'nested deeper than 8: refused');
  t.notOk(isUcum('[in_i'), 'an unclosed bracket');
});

t.test('a unit asked about again, or after hundreds of others, gets the same answer', async (t) => {
  const lhc = ucum.UcumLhcUtils.getInstance();
  const first = units.map((unit) => isUcum(unit));
  // More distinct valid units than are remembered: the answers past the bound are computed again.
  const many = Array.from({ length: 600 }, (_, i) => `mg/(kg.${i + 1}.min)`);
  t.ok(
    many.every((unit) => isUcum(unit)),
    '600 distinct valid units',
  );
  t.same(
    units.map((unit) => isUcum(unit)),
    first,
    'the same answers as the first time',
  );
  for (const unit of ['mm[Hg]', '%{HbA1c}', '123456', 'mmHg']) {
    const theirs = lhc.validateUnitString(unit, true).status === 'valid';
    t.same([isUcum(unit), isUcum(unit)], [theirs, theirs], JSON.stringify(unit));
  }
});

t.test(
  'config units: percent and bpm refused with the UCUM spelling; every unit a config sets',
  async (t) => {
    t.equal(ucumProblem('percent'), '"percent" is not a UCUM unit: write "%"');
    t.equal(ucumProblem('bpm'), '"bpm" is not a UCUM unit: write "/min"');
    t.match(ucumProblem('furlongs'), /not a UCUM unit \(units are case-sensitive UCUM/);
    t.equal(ucumProblem('/min'), undefined);
    const config = validateConfig({
      version: 1,
      gateway: { id: 'gw' },
      devices: [
        {
          id: 'ox',
          adapter: 'rs232',
          port: { path: '/dev/attache/ox' },
          format: {
            kind: 'kv-line',
            fields: { SPO2: { code: 'S', unit: 'percent' }, HR: { code: 'H', unit: '/min' } },
          },
        },
        {
          id: 'lab',
          adapter: 'rs232',
          port: { path: '/dev/attache/lab' },
          format: { kind: 'astm', codes: { HR: { code: 'H', unit: 'bpm' } }, units: { 'K/uL': 'mmHg' } },
        },
        { id: 'fridge', adapter: 'modbus', bus: { transport: 'tcp', host: '10.0.0.1' }, profile: 'f' },
      ],
      modbusProfiles: {
        f: { registers: [{ name: 't', ref: '30001', type: 'int16', code: 'T', unit: 'degC' }] },
      },
    });
    t.same(checkConfigUnits(config), [
      { path: '/devices/0/format/fields/SPO2/unit', message: '"percent" is not a UCUM unit: write "%"' },
      { path: '/devices/1/format/codes/HR/unit', message: '"bpm" is not a UCUM unit: write "/min"' },
      { path: '/devices/1/format/units/K~1uL', message: '"mmHg" is not a UCUM unit: write "mm[Hg]"' },
      { path: '/modbusProfiles/f/registers/0/unit', message: '"degC" is not a UCUM unit: write "Cel"' },
    ]);
  },
);

t.test('a device unit that is not UCUM is kept as the device unit, flagged by a null unit', async (t) => {
  const dir = t.testdir({ boot_id: '3f2c9a4e-8b1d-4c6f-9e2a-7d5b1c0e4f86\n' });
  writeFileSync(join(dir, 'synchronized'), '');
  const { devices } = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      {
        id: 'mon',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', port: 2575, allow: ['10.0.0.0/8'] },
        format: { kind: 'hl7-mllp', units: { 'beats per min': '/min' } },
      },
    ],
  });
  const warnings: Array<Record<string, unknown>> = [];
  const warn: LogFn = (fields: object | string) => {
    if (typeof fields === 'object') warnings.push({ ...fields });
  };
  const logger: Logger = { ...nullLogger, child: () => ({ ...nullLogger, warn }) };
  const normalizer = new ReadingNormalizer({
    gatewayId: 'gw',
    devices,
    tokenizer: new MemoryTokenizer(),
    clock: new SystemClock({ syncFile: join(dir, 'synchronized'), bootIdFile: join(dir, 'boot_id') }),
    logger,
  });
  const obs = (unit: string): CodedObservation => ({
    code: 'X',
    system: 'LOCAL',
    value: 1,
    unit,
    status: 'valid',
  });
  const draft = await normalizer.normalize({
    deviceId: 'mon',
    adapter: 'ethernet',
    protocol: 'hl7-mllp',
    receivedAt: 0,
    monotonicMs: 1,
    fields: [],
    markers: [],
    raw: Buffer.from(''),
    observations: [obs('%\xff'), obs('bpm'), obs('beats per min'), obs('furlongs\x07'), obs('g/dL')],
  });
  t.same(
    draft.observations.map((o) => [o.unit, o.deviceUnit]),
    [
      [null, '%\xff'],
      ['/min', undefined],
      ['/min', undefined],
      [null, 'furlongs\ufffd'],
      ['g/dL', undefined],
    ],
    'never passed off as UCUM; known spellings and the device map still map',
  );
  t.same(checkRecord({ ...draft, seq: 1 }), [], 'a valid record');
  t.same(
    warnings,
    [
      { deviceId: 'mon', code: 'X', unitLength: 2 },
      { deviceId: 'mon', code: 'X', unitLength: 9 },
    ],
    'each unit kept as the device spelled it is reported, by length when it does not look like a unit',
  );
  const again = await normalizer.normalize({
    deviceId: 'mon',
    adapter: 'ethernet',
    protocol: 'hl7-mllp',
    receivedAt: 0,
    monotonicMs: 1,
    fields: [],
    markers: [],
    raw: Buffer.from(''),
    observations: [obs('%\xff'), obs('furlong'), obs('MRN1234567')],
  });
  t.same(
    again.observations.map((o) => o.unit),
    [null, null, null],
  );
  t.same(
    warnings.slice(2),
    [
      { deviceId: 'mon', code: 'X', unit: 'furlong' },
      { deviceId: 'mon', code: 'X', unitLength: 10 },
    ],
    'once per device and unit; a unit holding a long number is never logged as text',
  );
});
