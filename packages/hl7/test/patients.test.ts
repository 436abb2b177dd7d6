import {
  type ByteLink,
  type DeviceReading,
  DeviceReport,
  GatewayError,
  ManualClock,
  type ReadingSink,
  validateConfig,
} from '@attache/core';
import { fuzzParameters, parseMllpAck, recordingLogger } from '@attache/devkit';
import {
  encodeMllp,
  Hl7Driver,
  type Hl7Interpretation,
  type Hl7ReadingParts,
  interpretHl7,
} from '@attache/hl7';
import fc from 'fast-check';
import t from 'tap';
import { type MultiPatientModel, multiPatientMessage } from './realistic.js';

const versions = ['2.5', '2.6'];
const interpret = (text: string, freeText = true) =>
  interpretHl7(Buffer.from(text, 'latin1'), { versions, freeText });

function readings(result: Hl7Interpretation): Hl7ReadingParts[] {
  if (result.kind === 'readings') return result.readings;
  if (result.kind === 'reading') return [result.reading];
  throw new Error(`expected readings, got ${result.kind}: ${JSON.stringify(result)}`);
}

const msh =
  'MSH|^~\\&|ANALYZER^080019FFFE134535^EUI-64|LAB|LIS|HOSP|20260124120501||ORU^R01^ORU_R01|B1|P|2.5';
const pid = (mrn: string, name: string) =>
  `PID|1||${mrn}^^^HOSP^MR||${name}||19470312|F|||1 ELM ST^^TOWN||555-01${mrn.slice(-2)}`;
const obr = (specimen: string, time: string) =>
  `OBR|1|${specimen}^LIS|${specimen}^LAB|CBC^Blood count^L|||${time}`;
const obx = (n: number, code: string, value: string) => `OBX|${n}|NM|${code}^${code}^LN||${value}|g/dL|||||F`;

/** Three patients as a laboratory analyser batches them, with notes, orders and people. */
const threePatients = [
  msh,
  'SFT|Vendor|1.0|Analyser',
  pid('MRN-0011', 'ALPHA^ANNA'),
  'NTE|1||patient note of ALPHA',
  'PV1||O|LAB||||1234^DOCTOR^DORA',
  'ORC|RE|ORD-1',
  obr('SPEC-1', '20260124110000'),
  obx(1, '718-7', '13.1'),
  'NTE|1||comment on the hemoglobin of ALPHA',
  obx(2, '4544-3', '40'),
  pid('MRN-0022', 'BRAVO^BEN'),
  'ORC|RE|ORD-2',
  obr('SPEC-2', '20260124113000'),
  obx(1, '718-7', '9.2'),
  'ORC|RE|ORD-3',
  obr('SPEC-3', '20260124114500'),
  obx(1, '2345-7', '5.4'),
  pid('MRN-0033', 'CHARLIE^CARA'),
  'NTE|1||patient note of CHARLIE',
  obr('SPEC-4', '20260124115000'),
  obx(1, '718-7', '14.9'),
].join('\r');

t.test('an ORU^R01 with three patients gives one reading per patient, each with its own data', async (t) => {
  const result = interpret(threePatients);
  t.equal(result.kind, 'readings');
  const [a, b, c] = readings(result);
  t.same(
    [a, b, c].map((r) => r?.patientId),
    ['MRN-0011', 'MRN-0022', 'MRN-0033'],
    'each its own PID-3, in message order',
  );
  t.same(
    a?.observations?.map((o) => [o.code, o.value, o.observedAt, o.comments]),
    [
      ['718-7', 13.1, '2026-01-24T11:00:00', ['comment on the hemoglobin of ALPHA']],
      ['4544-3', 40, '2026-01-24T11:00:00', undefined],
    ],
    "the first patient's observations, their OBR time and their NTE",
  );
  t.same(
    b?.observations?.map((o) => [o.code, o.value, o.observedAt]),
    [
      ['718-7', 9.2, '2026-01-24T11:30:00'],
      ['2345-7', 5.4, '2026-01-24T11:45:00'],
    ],
    'mixed orders: both orders of the second patient, each with its own OBR time',
  );
  t.same(
    c?.observations?.map((o) => o.value),
    [14.9],
  );
  t.same(a?.notes, ['patient note of ALPHA'], 'notes stay with their patient');
  t.equal(b?.notes, undefined);
  t.same(c?.notes, ['patient note of CHARLIE']);
  for (const r of [a, b, c]) {
    t.same(r?.instrument, { name: 'ANALYZER', eui64: '080019FFFE134535' }, 'the message instrument');
    t.equal(r?.deviceTime, '2026-01-24T12:05:01');
    t.equal(r?.raw.toString('latin1'), msh, 'raw is the MSH only');
    // people is the de-identification list (never stored): every person of the message, so a note
    // naming another patient of the batch is cleaned too.
    t.ok(r?.people?.includes('BRAVO') && r.people.includes('ALPHA') && r.people.includes('DORA'));
  }
});

t.test("a patient's identifiers never reach another patient's reading", async (t) => {
  const [a, b, c] = readings(interpret(threePatients, false));
  const others: [Hl7ReadingParts | undefined, string[]][] = [
    [a, ['MRN-0022', 'MRN-0033', 'BRAVO', 'CHARLIE', 'SPEC-2', 'SPEC-3', 'SPEC-4', 'ORD-2']],
    [b, ['MRN-0011', 'MRN-0033', 'ALPHA', 'CHARLIE', 'SPEC-1', 'SPEC-4', 'ORD-1']],
    [c, ['MRN-0011', 'MRN-0022', 'ALPHA', 'BRAVO', 'SPEC-1', 'SPEC-2', 'SPEC-3']],
  ];
  for (const [r, secrets] of others) {
    t.equal(r?.people, undefined, 'without free text the people fields are not read');
    const text = JSON.stringify({ ...r, raw: r?.raw.toString('latin1') });
    for (const secret of secrets) t.notMatch(text, secret, `${secret} is not in ${r?.patientId}'s reading`);
  }
});

t.test('two patients; a PID without results; the same patient again', async (t) => {
  const two = [
    msh,
    pid('MRN-0011', 'A^A'),
    obr('S1', ''),
    obx(1, 'X', '1'),
    pid('MRN-0022', 'B^B'),
    obx(1, 'Y', '2'),
  ];
  t.same(
    readings(interpret(two.join('\r'))).map((r) => [r.patientId, r.observations?.map((o) => o.code)]),
    [
      ['MRN-0011', ['X']],
      ['MRN-0022', ['Y']],
    ],
    'two patients, two readings (an OBR is not required)',
  );
  const withoutResults = [
    msh,
    pid('MRN-0011', 'A^A'),
    obr('S1', ''),
    pid('MRN-0022', 'B^B'),
    obx(1, 'Y', '2'),
  ];
  const single = interpret(withoutResults.join('\r'));
  t.equal(single.kind, 'reading', 'a patient without any OBX gives no reading');
  t.same(
    readings(single).map((r) => r.patientId),
    ['MRN-0022'],
  );
  const anonymous = two.join('\r').replace('ANALYZER^080019FFFE134535^EUI-64', '');
  t.same(
    readings(interpret(anonymous)).map((r) => r.instrument),
    [undefined, undefined],
    'no instrument when the message names none',
  );
  const noneHasResults = [msh, pid('MRN-0011', 'A^A'), obr('S1', ''), pid('MRN-0022', 'B^B'), obr('S2', '')];
  t.match(
    interpret(noneHasResults.join('\r')),
    { kind: 'reject', code: 'AE', error: { hl7Code: 100, location: 'OBX' } },
    'no patient with an OBX: refused as any ORU^R01 without one',
  );
  const again = [...two, pid('MRN-0011', 'A^A'), obx(1, 'Z', '3')];
  t.same(
    readings(interpret(again.join('\r'))).map((r) => [r.patientId, r.observations?.map((o) => o.code)]),
    [
      ['MRN-0011', ['X', 'Z']],
      ['MRN-0022', ['Y']],
    ],
    'a PID repeated for a patient seen before adds to that patient',
  );
});

t.test('what stays refused: results before the first PID, a PID without id, other types', async (t) => {
  const before = [
    msh,
    obx(1, 'W', '0'),
    pid('MRN-0011', 'A^A'),
    obx(1, 'X', '1'),
    pid('MRN-0022', 'B^B'),
    obx(1, 'Y', '2'),
  ];
  t.match(
    interpret(before.join('\r')),
    { kind: 'reject', code: 'AE', error: { hl7Code: 100, location: '2' } },
    'an OBX before the first PID of a message with several patients belongs to no one',
  );
  const oneOnly = [msh, obx(1, 'W', '0'), pid('MRN-0011', 'A^A'), obx(1, 'X', '1')];
  t.equal(interpret(oneOnly.join('\r')).kind, 'reading', 'with one patient, as before: all of it is hers');
  const badValue = [
    msh,
    pid('MRN-0011', 'A^A'),
    obx(1, 'X', '1'),
    pid('MRN-0022', 'B^B'),
    obx(1, 'Y', 'high'),
  ];
  t.match(
    interpret(badValue.join('\r')),
    { kind: 'reject', code: 'AE', error: { hl7Code: 102 } },
    "one patient's malformed OBX refuses the whole message: none of it is stored",
  );
  const noId = [msh, pid('MRN-0011', 'A^A'), obx(1, 'X', '1'), 'PID|1||^^^HOSP^MR||B^B', obx(1, 'Y', '2')];
  t.match(interpret(noId.join('\r')), {
    kind: 'reject',
    code: 'AE',
    error: { hl7Code: 101, location: 'PID^2^3' },
  });
  const adt = [
    'MSH|^~\\&|A|B|C|D|20260101||ADT^A17|9|P|2.5',
    'EVN|A17',
    pid('MRN-0011', 'A^A'),
    pid('MRN-0022', 'B^B'),
  ];
  t.match(
    interpret(adt.join('\r')),
    { kind: 'reject', code: 'AE', error: { hl7Code: 100, location: '4' } },
    'a message type other than ORU^R01 carries one patient',
  );
  const r40 = [
    ...before.slice(0, 1),
    pid('MRN-0011', 'A^A'),
    obx(1, 'X', '1'),
    pid('MRN-0022', 'B^B'),
    obx(1, 'Y', '2'),
  ];
  t.match(
    interpret(r40.join('\r').replace('ORU^R01^ORU_R01', 'ORU^R40^ORU_R40')),
    { kind: 'reject', code: 'AE', error: { hl7Code: 100, location: '4' } },
    'nor an ORU^R40 alarm',
  );
});

t.test('generated multi-patient messages: one reading per patient, as the model says', async (t) => {
  const check = (model: MultiPatientModel, text: string) => {
    const result = interpret(text, false);
    const expected = model.patients
      .filter((p) => p.values.length > 0)
      .map((p) => [p.id, p.values.map((v) => Number(v))]);
    if (expected.length === 0) {
      if (result.kind !== 'reject' || result.error.hl7Code !== 100) throw new Error('no OBX: AE 100');
      return;
    }
    const got = readings(result).map((r) => [r.patientId, r.observations?.map((o) => o.value)]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      throw new Error(`got ${JSON.stringify(got)}, model ${JSON.stringify(expected)}`);
    }
  };
  fc.assert(
    fc.property(multiPatientMessage, ([model, text]) => check(model, text)),
    fuzzParameters(200),
  );
  t.pass('every generated message agrees with its model');
});

function hl7Format() {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [{ id: 'lab-1', adapter: 'rs232', port: { path: '/dev/null' }, format: { kind: 'hl7-mllp' } }],
  });
  const device = config.devices[0];
  if (device?.adapter !== 'rs232' || device.format.kind !== 'hl7-mllp') throw new Error('not hl7');
  return device.format;
}

/** A session on a link in memory, delivering to `sink`. */
function rig(sink: ReadingSink) {
  const written: Buffer[] = [];
  const link: ByteLink = {
    name: 'memory',
    open: true,
    write: (bytes) => written.push(bytes) > 0,
    pause: () => undefined,
    resume: () => undefined,
    close: () => undefined,
  };
  const clock = new ManualClock();
  const report = new DeviceReport(recordingLogger([]), clock);
  const session = new Hl7Driver({ format: hl7Format(), adapter: 'rs232' }).open(link, {
    deviceId: 'lab-1',
    sink,
    refusing: () => false,
    report,
    clock,
  });
  const acks = () => written.map((b) => parseMllpAck(b.toString('latin1')));
  return { session, report, acks };
}

t.test('the session hands the patients to the sink all at once, then one AA', async (t) => {
  const calls: DeviceReading[][] = [];
  const sink: ReadingSink = Object.assign(
    async () => {
      t.fail('not one by one');
    },
    {
      all: async (readings: DeviceReading[]) => {
        calls.push(readings);
      },
    },
  );
  const { session, report, acks } = rig(sink);
  session.receive(encodeMllp(threePatients));
  await session.drained();
  t.same(
    acks().map((a) => a.code),
    ['AA'],
  );
  t.equal(calls.length, 1, 'one call for the message');
  const keys = calls[0]?.map((r) => r.idempotencyKey) ?? [];
  t.equal(new Set(keys).size, 3, 'each reading its own key');
  t.match(keys[0], /^hl7:[0-9a-f]{64}:1$/);
  t.same(
    keys.map((k) => k?.slice(-2)),
    [':1', ':2', ':3'],
  );
  session.receive(encodeMllp(threePatients));
  await session.drained();
  t.same(
    calls[1]?.map((r) => r.idempotencyKey),
    keys,
    'the same keys when the message is sent again',
  );
  t.equal(report.counts.stored, 6);
});

t.test('the sink refusing the message: AE when malformed, AR when it cannot store now', async (t) => {
  const errors = [
    new GatewayError('ATTACHE_MALFORMED', 'no mapping'),
    new GatewayError('ATTACHE_CACHE_FULL', 'full'),
  ];
  const sink: ReadingSink = Object.assign(async () => undefined, {
    all: async () => {
      throw errors.shift();
    },
  });
  const { session, report, acks } = rig(sink);
  session.receive(Buffer.concat([encodeMllp(threePatients), encodeMllp(threePatients)]));
  await session.drained();
  t.same(
    acks().map((a) => a.code),
    ['AE', 'AR'],
  );
  t.same(
    report.counts,
    { frames: 2, stored: 0, malformed: 1, refused: 3 },
    'one malformed message; three readings refused',
  );
  const throwing = rig(
    Object.assign(async () => undefined, {
      all: (): Promise<void> => {
        throw new GatewayError('ATTACHE_CACHE_CLOSED', 'closed');
      },
    }),
  );
  throwing.session.receive(encodeMllp(threePatients));
  await throwing.session.drained();
  t.same(
    throwing.acks().map((a) => a.code),
    ['AR'],
    'a sink that throws at once: AR',
  );
});

t.test('a sink without all() gets the readings one by one, each keyed', async (t) => {
  const seen: DeviceReading[] = [];
  let fail = true;
  const { session, acks } = rig((reading) => {
    if (fail && reading.patientId === 'MRN-0022') {
      fail = false;
      return Promise.reject(new GatewayError('ATTACHE_CACHE_FULL', 'full'));
    }
    seen.push(reading);
    return Promise.resolve();
  });
  session.receive(encodeMllp(threePatients));
  await session.drained();
  session.receive(encodeMllp(threePatients));
  await session.drained();
  t.same(
    acks().map((a) => a.code),
    ['AR', 'AA'],
    'refused until every reading was taken',
  );
  t.same(
    seen.map((r) => r.idempotencyKey?.slice(-2)),
    [':1', ':3', ':1', ':2', ':3'],
    'a re-sent part keeps its key (the sink recognises it)',
  );
});
