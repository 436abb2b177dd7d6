import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  buildHl7Ack,
  decodeHl7,
  decodeHl7Bytes,
  encodeMllp,
  type Hl7Interpretation,
  hl7AckFrame,
  hl7Encoding,
  hl7Time,
  interpretHl7,
  mdilToMdc,
  parseHl7Message,
  parseProblem,
} from '@attache/hl7';
import t from 'tap';
import { vitalSigns } from './helpers.js';

const versions = ['2.5', '2.6'];
// The constructed reference ACKs, byte for byte.
const samples = fileURLToPath(new URL('fixtures', import.meta.url));
const inbound =
  'MSH|^~\\&|VSP^080019FFFE134535^EUI-64|GE Healthcare|GATEWAY|HOSP|20130122134100||ORU^R01^ORU_R01|004097134535|P|2.6\rPID|||1';

function reading(result: Hl7Interpretation) {
  if (result.kind !== 'reading') throw new Error(`expected a reading, got ${result.kind}`);
  return result.reading;
}

t.test('ACKs match the constructed reference samples byte for byte', async (t) => {
  const message = parseHl7Message(inbound);
  const aa = buildHl7Ack({ message, code: 'AA', controlId: 'GW000001', timestamp: '20130122134101' });
  t.same(encodeMllp(aa), await readFile(`${samples}/hl7_mllp_ack_aa_constructed.bin`), 'AA');
  const ae = buildHl7Ack({
    message,
    code: 'AE',
    controlId: 'GW000002',
    timestamp: '20130122134101',
    error: { hl7Code: 207, reason: 'OBX-5 not numeric' },
  });
  t.same(encodeMllp(ae), await readFile(`${samples}/hl7_mllp_ack_ae_constructed.bin`), 'AE with ERR');
  t.throws(() => buildHl7Ack({ message, code: 'AR', controlId: 'x' }), TypeError, 'AR needs an error');
});

t.test('delimiters come from MSH-1/2; escapes are decoded; LF and CRLF split segments', async (t) => {
  const message = parseHl7Message(
    'MSH#*@!$#APP#FAC\r\nOBX#1#ST#X*a!b#1#10 !F! 20 !S! 30 !T! !R! !E! !X41!\nZZZ#1',
  );
  t.same(message.delimiters, { field: '#', component: '*', repetition: '@', escape: '!', subcomponent: '$' });
  t.same(
    message.segments.map((s) => s.name),
    ['MSH', 'OBX', 'ZZZ'],
  );
  t.equal(message.msh.raw(1), '#', 'MSH-1 is the field separator');
  t.equal(message.msh.get(3), 'APP');
  const obx = message.segments[1];
  t.equal(obx?.get(3, 2), 'a!b', 'an unterminated escape is kept as sent');
  t.equal(obx?.get(5), '10 # 20 * 30 $ @ ! A', 'every escape decoded');
  t.equal(
    decodeHl7('line!.br!two!Zunknown!', message.delimiters),
    'line\rtwo',
    '.br is a line break, unknown escapes are dropped',
  );
});

t.test('garbage is refused with the table 0357 code', async (t) => {
  t.throws(() => parseHl7Message('hello'), { code: 'ATTACHE_MALFORMED' });
  const noMsh = interpretHl7(Buffer.from('PID|1|2'), { versions });
  t.match(noMsh, { kind: 'reject', code: 'AE', message: undefined, error: { hl7Code: 100 } });
  const badEncoding = interpretHl7(Buffer.from('MSH|^^^^|A'), { versions });
  t.match(badEncoding, { kind: 'reject', code: 'AE', error: { hl7Code: 102, location: 'MSH^1^2' } });
  const badSegment = interpretHl7(Buffer.from(`${inbound}\rx1|2`), { versions });
  t.match(badSegment, { kind: 'reject', code: 'AE', error: { hl7Code: 100 } });
  t.equal(parseProblem(new Error('x')), undefined);
});

t.test('MSH-9/10/12 are required; unsupported version and type get AR', async (t) => {
  const msh = (type: string, id: string, version: string) =>
    Buffer.from(`MSH|^~\\&|A|B|C|D|20260101||${type}|${id}|P|${version}`);
  t.match(interpretHl7(msh('', '1', '2.6'), { versions }), {
    code: 'AE',
    error: { hl7Code: 101, location: 'MSH^1^9' },
  });
  t.match(interpretHl7(msh('ORU^R01', '', '2.6'), { versions }), { code: 'AE', error: { hl7Code: 101 } });
  t.match(interpretHl7(msh('ORU^R01', '1', ''), { versions }), { code: 'AE', error: { hl7Code: 101 } });
  t.match(interpretHl7(msh('ORU^R01', '1', '2.3'), { versions }), { code: 'AR', error: { hl7Code: 203 } });
  t.match(interpretHl7(msh('QBP^Q22', '1', '2.6'), { versions }), { code: 'AR', error: { hl7Code: 200 } });
  t.match(interpretHl7(msh('ACK^R01', '1', '2.6'), { versions }), { kind: 'ignore' });
  t.match(
    interpretHl7(msh('ORU^R01', '1', '2.6'), { versions }),
    { code: 'AE', error: { hl7Code: 100, location: 'OBX', reason: 'ORU^R01 without any OBX segment' } },
    'an ORU^R01 without any OBX is refused, not stored empty',
  );
  t.match(interpretHl7(msh('ADT^A01', '1', '2.6'), { versions }), { kind: 'reading' }, 'an ADT needs none');
});

t.test('a PCD-01 ORU^R01 becomes MDC-coded observations, headers skipped, paths kept', async (t) => {
  const r = reading(interpretHl7(Buffer.from(vitalSigns('MSG0001')), { versions }));
  t.equal(r.protocol, 'hl7-mllp');
  t.same(
    r.observations?.map((o) => [o.code, o.system, o.mdc, o.value, o.unit, o.status, o.path]),
    [
      ['MDC_PRESS_BLD_NONINV_SYS', 'MDC', 150021, 120, 'MDC_DIM_MMHG', 'valid', '1.1.1.1'],
      ['MDC_PRESS_BLD_NONINV_DIA', 'MDC', 150022, 80, 'MDC_DIM_MMHG', 'valid', '1.1.1.2'],
      ['MDC_PRESS_BLD_NONINV_MEAN', 'MDC', 150023, 93, 'MDC_DIM_MMHG', 'valid', '1.1.1.3'],
      ['MDC_PULS_OXIM_SAT_O2', 'MDC', 150456, 97, 'MDC_DIM_PERCENT', 'valid', '1.2.1.1'],
      ['MDC_PULS_OXIM_PULS_RATE', 'MDC', 149530, 72, 'MDC_DIM_BEAT_PER_MIN', 'valid', '1.2.1.2'],
      ['MDC_TEMP', 'MDC', 150344, 36.8, 'MDC_DIM_DEGC', 'valid', '1.3.1.1'],
      ['MDC_TEMP', 'MDC', 150344, 37.4, 'MDC_DIM_DEGC', 'valid', '1.3.2.1'],
    ],
  );
  t.equal(r.observations?.[0]?.observedAt, '2026-01-24T12:04:55', 'OBX-14');
  t.equal(r.observations?.[3]?.observedAt, '2026-01-24T12:05:00', 'OBR-7 when OBX-14 is empty');
  t.same(r.instrument, { name: 'VSP', eui64: '080019FFFE134535' }, 'MSH-3 EUI-64');
  t.equal(r.deviceTime, '2026-01-24T12:05:01');
  t.equal(r.patientId, 'MRN-448812', 'PID-3 first id, for the normalizer to tokenize');
  t.equal(r.event, undefined);
  // `people` holds the names the message carries, for the normalizer's de-identification only.
  t.ok(r.people?.includes('SMITHERSON') && r.people.includes('WELBY'), 'PID-5 and PV1-7 names are in people');
  const text = JSON.stringify({ ...r, people: undefined, raw: r.raw.toString('latin1') });
  for (const secret of [
    'SMITHERSON',
    'JANE',
    '19470312',
    'ELM STREET',
    '555-0100',
    '123-45-6789',
    'WELBY',
    'BED7',
  ]) {
    t.notMatch(text, secret, `${secret} from PID/PV1 is nowhere else in the reading, raw included`);
  }
});

t.test('MDIL codes, local codes, coded values, statuses, free text', async (t) => {
  const message = [
    'MSH|^~\\&|MON|F|GW|H|20260101120000||ORU^R01|1|P|2.5',
    'OBX|1|NM|0002-4bb8^SpO2^MDIL|1.1.1.1|98|0004-0220^%^MDIL|||||F',
    'OBX|2|NM|HRX^Heart rate^L||61|bpm|50-100|H~A|||C',
    'OBX|3|CWE|184^MDC_EVT_LO^MDC|1.1.1.9|MDC_EVT_LO^low^MDC||||||P',
    'OBX|4|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.2|--|262688^MDC_DIM_PERCENT^MDC|||||X',
    'OBX|5|TX|NOTE^note^L||patient Jane said hello||||||F',
    'OBX|6|ST|LOC^local^L~X^Y^Z||a\\S\\b||||||Q',
    'OBX|7|NM|1^x^L^147842^MDC_ECG_HEART_RATE^MDC||70|264864||||||||20260101',
  ].join('\r');
  const r = reading(interpretHl7(Buffer.from(message), { versions }));
  t.same(
    r.observations?.map((o) => [o.code, o.system, o.mdc, o.value, o.unit, o.status, o.freeText]),
    [
      ['0002-4bb8', 'MDC', 150456, 98, '262688', 'valid', undefined],
      ['HRX', 'LOCAL', undefined, 61, 'bpm', 'valid', undefined],
      ['NOTE', 'LOCAL', undefined, 'patient Jane said hello', '', 'valid', true],
      ['LOC', 'LOCAL', undefined, 'a^b', '', 'questionable', true],
      ['MDC_ECG_HEART_RATE', 'MDC', 147842, 70, '264864', 'valid', undefined],
    ],
    'TX and ST values are marked free text: the normalizer keeps them only when the config says so',
  );
  t.same(r.observations?.[0]?.deviceCode, { code: '0002-4bb8', system: 'MDIL' }, 'the MDIL code is kept');
  t.same(r.observations?.[4]?.deviceCode, { code: '1', system: 'L' }, 'the local code before the MDC one');
  t.same(r.observations?.[1]?.abnormalFlags, ['H', 'A']);
  t.equal(r.observations?.[1]?.referenceRange, '50-100');
  t.equal(r.observations?.[4]?.observedAt, undefined, 'a date-only time is left out');
  t.match(
    r.alarms,
    [
      {
        code: 'MDC_EVT_LO',
        system: 'MDC',
        mdc: 184,
        origin: 'pcd-04',
        direction: 'low',
        path: '1.1.1.9',
        parameter: { code: 'MDC_PULS_OXIM_SAT_O2', value: null, status: 'unavailable' },
      },
    ],
    'a bare MDC event OBX is an alarm, the next numeric OBX its parameter',
  );
  t.equal(r.event?.type, 'alarm');
  t.equal(mdilToMdc('0002-4182'), 147842);
  t.equal(hl7Time('202601241205'), '2026-01-24T12:05:00');
  t.equal(hl7Time('20260124120501.25+0100'), '2026-01-24T12:05:01.25');
});

t.test('a non-numeric NM value is an AE naming the OBX', async (t) => {
  const message = 'MSH|^~\\&|M|F|G|H|20260101||ORU^R01|77|P|2.6\rOBX|1|NM|X^Y^L|1|abc||||||F';
  t.match(interpretHl7(Buffer.from(message), { versions }), {
    kind: 'reject',
    code: 'AE',
    error: { hl7Code: 102, location: 'OBX^1^5', reason: 'OBX 1: OBX-5 not numeric' },
  });
});

t.test('other message types become events with no identifying detail', async (t) => {
  const adt = `MSH|^~\\&|ADT|F|G|H|20260101||ADT^A01^ADT_A01|9|P|2.5\rEVN|A01\rPID|||MRN-1||DOE^JOHN\rPV1||I|W^1`;
  const r = reading(interpretHl7(Buffer.from(adt), { versions }));
  t.same(r.observations, []);
  t.same(r.event, { type: 'hl7.adt-a01', detail: { messageType: 'ADT^A01', version: '2.5', segments: 4 } });
  t.equal(r.patientId, 'MRN-1');
  t.notMatch(JSON.stringify(r.event), 'DOE');
  // An alarm (ORU^R40, IHE PCD-04 style): an event that keeps which alarm fired and on what value.
  const alarm = [
    'MSH|^~\\&|M|F|G|H|20260101||ORU^R40^ORU_R40|9|P|2.6',
    'PID|||MRN-1||DOE^JOHN',
    'OBR|1|||196616^MDC_EVT_ALARM^MDC|||20260101120000',
    'OBX|1|CWE|196648^MDC_EVT_HI^MDC|1.1.1.1|196648^MDC_EVT_HI^MDC||||||F',
    'OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.1|150|264864^MDC_DIM_BEAT_PER_MIN^MDC|50-120|H|||F',
  ].join('\r');
  const r40 = reading(interpretHl7(Buffer.from(alarm), { versions }));
  t.match(r40.event, { type: 'alarm', detail: { messageType: 'ORU^R40', alarms: 1 } });
  t.same(r40.observations, [], 'the OBXs are read into the alarm');
  t.match(
    r40.alarms,
    [
      {
        code: 'MDC_EVT_HI',
        mdc: 196648,
        direction: 'high',
        limits: { low: 50, high: 120 },
        observedAt: '2026-01-01T12:00:00',
        parameter: { code: 'MDC_ECG_HEART_RATE', value: 150, abnormalFlags: ['H'] },
      },
    ],
    'the alarm and the value that raised it',
  );
  t.notMatch(JSON.stringify({ ...r40, people: [] }), 'DOE');
});

t.test('an OBX-18 EUI-64 names the device when MSH-3 does not; UTF-8 is decoded', async (t) => {
  const message =
    'MSH|^~\\&|MON|F|G|H|20260101||ORU^R01|9|P|2.6\rOBX|1|NM|T^Temp^L|1|37|°C|||||F|||||||080019FFFE0B4020^B40_GE';
  const r = reading(interpretHl7(Buffer.from(message, 'utf8'), { versions }));
  t.same(r.instrument, { name: 'B40_GE', eui64: '080019FFFE0B4020' });
  t.equal(r.observations?.[0]?.unit, '°C');
  const latin1 = reading(interpretHl7(Buffer.from(message, 'latin1'), { versions }));
  t.equal(latin1.observations?.[0]?.unit, '°C', 'Latin-1 bytes are read as Latin-1');
});

t.test('MSH-18 8859/1 is read as Latin-1 even where the bytes are also valid UTF-8', async (t) => {
  // "Ã©" in Latin-1 is the bytes C3 A9, which are also UTF-8 for "é": only MSH-18 can tell.
  const header = (charset: string) => `MSH|^~\\&|MON|F|G|H|20260101||ORU^R01|9|P|2.6||||||${charset}\r`;
  const body = 'OBX|1|NM|T^Temp^L|1|37|Ã©C|||||F';
  const declared = reading(interpretHl7(Buffer.from(header('8859/1') + body, 'latin1'), { versions }));
  t.equal(declared.observations?.[0]?.unit, 'Ã©C', 'declared Latin-1: every byte one character');
  const repeated = reading(
    interpretHl7(Buffer.from(header('8859/1~ISO IR87') + body, 'latin1'), { versions }),
  );
  t.equal(repeated.observations?.[0]?.unit, 'Ã©C', 'the first repetition is the default set');
  const utf8 = reading(interpretHl7(Buffer.from(header('UNICODE UTF-8') + body, 'latin1'), { versions }));
  t.equal(utf8.observations?.[0]?.unit, 'éC', 'declared UTF-8: read as UTF-8');
  const undeclared = reading(interpretHl7(Buffer.from(header('') + body, 'latin1'), { versions }));
  t.equal(undeclared.observations?.[0]?.unit, 'éC', 'nothing declared: valid UTF-8 is read as UTF-8');

  const payload = Buffer.from(`${header('8859/1')}${body}`, 'latin1');
  t.equal(hl7Encoding(payload), 'latin1', "the message's ACK is written in Latin-1 too (hl7AckFrame)");
  const message = parseHl7Message(decodeHl7Bytes(payload));
  t.equal(hl7AckFrame(payload, { message, code: 'AA', controlId: 'A1' })[0], 0x0b, 'one MLLP frame');
});

t.test(
  'two messages run together in one frame are refused; a PID repeated for the same patient is one reading',
  async (t) => {
    const one = vitalSigns('MSG0001', 'MRN-1');
    const other = vitalSigns('MSG0002', 'MRN-2');
    const segments = one.split('\r').length;
    const interpret = (text: string) => interpretHl7(Buffer.from(text, 'latin1'), { versions });
    t.match(
      interpret(`${one}\r${other}`),
      { kind: 'reject', code: 'AE', error: { hl7Code: 100, location: `${segments + 1}` } },
      "the second message's observations are not stored under the first one's patient",
    );
    const samePatient = `${one}\r${vitalSigns('MSG0001', 'MRN-1').split('\r').slice(1).join('\r')}`;
    const same = reading(interpret(samePatient));
    t.equal(same.patientId, 'MRN-1', 'a PID repeated for the same patient is read as one reading');
    t.equal(same.observations?.length, 14, 'with the observations of both groups');
    const noIdFirst = one.replace(/^PID\|\|\|[^|]*/m, 'PID|||');
    t.match(
      interpret(`${noIdFirst}\r${other.split('\r').slice(1).join('\r')}`),
      { kind: 'reject', code: 'AE', error: { hl7Code: 101, location: 'PID^1^3' } },
      'a PID without an id among several patients: whose results follow it cannot be told',
    );
    t.match(interpret(one), { kind: 'reading' });
  },
);
