import { ChangeFilter, checkModbusConfig, planReads } from '@attache/adapter-modbus';
import type { CodedObservation, DeviceConfig, ModbusProfile, ModbusRegister } from '@attache/core';
import t from 'tap';

function reg(r: Partial<ModbusRegister> & Pick<ModbusRegister, 'name' | 'type'>): ModbusRegister {
  return {
    order: 'ABCD',
    scale: 1,
    offset: 0,
    code: r.name,
    system: 'LOCAL',
    unit: '1',
    questionableWhenNonZero: false,
    ...r,
  };
}
const hr = (name: string, address: number, type: ModbusRegister['type'] = 'uint16') =>
  reg({ name, type, table: 'holding-register', address });

const spans = (registers: ModbusRegister[]) =>
  planReads(registers).map(
    (b) => `${b.table}:${b.address}+${b.count}[${b.values.map((v) => v.register.name).join(',')}]`,
  );

t.test('adjacent and overlapping registers of one table merge into one read', async (t) => {
  t.same(
    spans([
      hr('a', 0),
      hr('b', 1, 'float32'),
      hr('c', 3),
      reg({ name: 'd', type: 'bit', bit: 3, ref: '40004' }),
    ]),
    ['holding-register:0+4[a,b,c,d]'],
  );
});

t.test('a gap is never read across: it could be an illegal address', async (t) => {
  t.same(spans([hr('a', 0), hr('b', 2)]), ['holding-register:0+1[a]', 'holding-register:2+1[b]']);
});

t.test('tables are read separately, coils first; reads stop at 125 registers and 2000 bits', async (t) => {
  const many = Array.from({ length: 130 }, (_, i) => hr(`r${i}`, 100 + i));
  const plan = planReads([
    ...many,
    reg({ name: 'c', type: 'bool', ref: '00001' }),
    reg({ name: 'i', type: 'int16', ref: '30001' }),
  ]);
  t.same(
    plan.map((b) => [b.table, b.address, b.count]),
    [
      ['coil', 0, 1],
      ['input-register', 0, 1],
      ['holding-register', 100, 125],
      ['holding-register', 225, 5],
    ],
  );
  const coils = Array.from({ length: 2001 }, (_, i) =>
    reg({ name: `c${i}`, type: 'bool', table: 'coil', address: i }),
  );
  t.same(
    planReads(coils).map((b) => b.count),
    [2000, 1],
  );
  t.same(
    spans([
      hr('s', 0, 'uint16'),
      reg({ name: 'long', type: 'string', length: 125, table: 'holding-register', address: 1 }),
    ]),
    ['holding-register:0+1[s]', 'holding-register:1+125[long]'],
    'a value is never split across reads',
  );
});

function config(
  registers: ModbusRegister[],
  devices: Partial<DeviceConfig>[] = [{}],
): Parameters<typeof checkModbusConfig>[0] {
  const profiles: Record<string, ModbusProfile> = {
    fridge: { registers: registers as ModbusProfile['registers'] },
  };
  return {
    modbusProfiles: profiles,
    devices: devices.map(
      (d, i) =>
        ({
          id: `dev${i}`,
          adapter: 'modbus',
          bus: {
            transport: 'rtu',
            path: '/dev/ttyUSB0',
            baudRate: 9600,
            dataBits: 8,
            parity: 'even',
            stopBits: 1,
          },
          unitId: 1,
          profile: 'fridge',
          pollIntervalMs: 1000,
          timeoutMs: 1000,
          rawFrames: false,
          ...d,
        }) as DeviceConfig,
    ),
  };
}

t.test('checkModbusConfig refuses what the schema cannot, each with its path', async (t) => {
  t.same(checkModbusConfig(config([hr('t', 0)])), [], 'a good map passes');
  const issues = checkModbusConfig(
    config(
      [
        reg({ name: 'zero', type: 'uint16', ref: '40000' }),
        reg({ name: 'coilfloat', type: 'float32', ref: '00001' }),
        reg({ name: 'regbool', type: 'bool', table: 'input-register', address: 0 }),
        reg({ name: 'end', type: 'float64', table: 'holding-register', address: 65533 }),
        reg({ name: 'end', type: 'uint16', bit: 2, length: 3, table: 'holding-register', address: 1 }),
        reg({ name: 'label', type: 'string', length: 2, ref: '465536', questionableWhenNonZero: true }),
      ],
      [
        {},
        { profile: 'nope' },
        {
          bus: {
            transport: 'rtu',
            path: '/dev/ttyUSB0',
            baudRate: 19200,
            dataBits: 8,
            parity: 'none',
            stopBits: 2,
          },
        },
      ],
    ),
  );
  t.same(
    issues.map((i) => i.path),
    [
      '/devices/1/profile',
      '/devices/2/bus',
      '/modbusProfiles/fridge/registers/0/ref',
      '/modbusProfiles/fridge/registers/1/type',
      '/modbusProfiles/fridge/registers/2/type',
      '/modbusProfiles/fridge/registers/3/address',
      '/modbusProfiles/fridge/registers/4/name',
      '/modbusProfiles/fridge/registers/4/bit',
      '/modbusProfiles/fridge/registers/4/length',
      '/modbusProfiles/fridge/registers/5/questionableWhenNonZero',
      '/modbusProfiles/fridge/registers/5/ref',
    ],
  );
  t.match(issues[0]?.message, /no profile nope/);
  t.match(issues[1]?.message, /differ from device dev0/);
});

const obs = (
  value: number | string | null,
  status: CodedObservation['status'] = 'valid',
): CodedObservation[] => [
  { code: 't', system: 'LOCAL', value, unit: 'Cel', status, source: 't', path: 'hr:0' },
];

t.test('ChangeFilter: stores changes beyond the deadband, other changes, and a heartbeat', async (t) => {
  const f = new ChangeFilter({ deadband: 0.5, heartbeatSeconds: 60 });
  t.equal(f.accept(obs(4.0), 0), true, 'the first poll is stored');
  t.equal(f.accept(obs(4.4), 1000), false, 'within the deadband');
  t.equal(f.accept(obs(4.5), 2000), false, 'exactly the deadband is not more than it');
  t.equal(f.accept(obs(4.6), 3000), true, 'more than the deadband from the last stored value');
  t.equal(f.accept(obs(4.6, 'questionable'), 4000), true, 'a status change');
  t.equal(f.accept(obs(null, 'unavailable'), 5000), true, 'a value lost');
  t.equal(f.accept(obs(null, 'unavailable'), 64_000), false);
  t.equal(f.accept(obs(null, 'unavailable'), 65_000), true, 'heartbeat after 60 s');
  f.reset();
  t.equal(f.accept(obs(null, 'unavailable'), 65_001), true, 'after a failed store the next poll is stored');
  t.equal(f.accept(obs('A'), 65_002), true, 'text changes count');
});
