import { type Hl7Interpretation, interpretHl7 } from '@attache/hl7';
import t from 'tap';

const versions = ['2.5', '2.6'];

function reading(result: Hl7Interpretation) {
  if (result.kind !== 'reading') throw new Error(`expected a reading, got ${result.kind}`);
  return result.reading;
}

const header = 'MSH|^~\\&|MON^080019FFFE134535^EUI-64|F|GW|H|20260101120000||ORU^R01^ORU_R01|1|P|2.6';
/** A segment with the given fields set (HL7 field numbers), the others empty. */
function segment(name: string, fields: Record<number, string>): string {
  const last = Math.max(...Object.keys(fields).map(Number));
  return [name, ...Array.from({ length: last }, (_, i) => fields[i + 1] ?? '')].join('|');
}

const people = [
  segment('PID', {
    2: 'ALT-1',
    3: 'MRN-448812^^^HOSP^MR',
    5: 'QUIMBY^HORTENSE^M',
    6: 'HATTIE^Q',
    7: '19470312',
    11: '12 ELM STREET^^SPRINGFIELD^^12345',
    13: '555-0100^^^hq@example.org',
  }),
  segment('PV1', {
    2: 'I',
    3: 'ICU^7^1',
    7: 'W1^WELBY^MARCUS^^^DR',
    8: 'C1^CASEY^BEN',
    9: 'K1^KILDARE^JAMES',
    17: 'A1^ADLER^IRENE',
    19: 'V-77123',
  }),
  segment('ORC', { 1: 'RE', 10: 'E1^ENTRY^ELLA', 11: 'V1^VERIFY^VIC', 12: 'O1^ORDERER^OTTO' }),
  segment('OBR', {
    1: '1',
    4: '182777000^monitoring of patient^SCT',
    7: '20260101115900',
    10: 'C2^COLLECT^COLE',
    16: 'O2^ORDERING^OLGA',
    28: 'R1^RESCOPY^ROSS',
    32: 'I1&PRINCIPAL&PAM',
    34: 'T1&TECHNICIAN&TED',
  }),
];

t.test(
  'NTE after an OBX is its comment, after OBR/ORC/PID a note; TX, FT and ST are marked free text',
  async (t) => {
    const message = [
      header,
      ...people,
      'NTE|1||Patient Hortense restless, Dr Welby aware',
      'OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.1|97|262688^MDC_DIM_PERCENT^MDC|||||R',
      'NTE|1||probe re-sited by nurse Kelly~call 555-0199',
      'NTE|2||second line',
      'OBX|2|TX|NOTE^note^L|1.9.1.1|seen by Dr Casey||||||F',
      'OBX|3|FT|NOTE^note^L|1.9.1.2|family: Hattie Quimby||||||F',
      'OBX|4|ST|NOTE^note^L|1.9.1.3|operator KILDARE||||||F',
      'OBX|5||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X',
      'NTE|1||after a header: a note',
    ].join('\r');
    const r = reading(interpretHl7(Buffer.from(message), { versions }));
    t.same(r.notes, ['Patient Hortense restless, Dr Welby aware', 'after a header: a note']);
    t.same(r.observations?.[0]?.comments, ['probe re-sited by nurse Kelly call 555-0199', 'second line']);
    t.same(
      r.observations?.slice(1).map((o) => [o.value, o.freeText]),
      [
        ['seen by Dr Casey', true],
        ['family: Hattie Quimby', true],
        ['operator KILDARE', true],
      ],
    );
    for (const name of [
      'QUIMBY',
      'HORTENSE',
      'HATTIE',
      'MRN-448812',
      'ALT-1',
      '12 ELM STREET',
      'SPRINGFIELD',
      '555-0100',
      'hq@example.org',
      'WELBY',
      'CASEY',
      'KILDARE',
      'ADLER',
      'V-77123',
      'ENTRY',
      'VERIFY',
      'ORDERER',
      'COLLECT',
      'ORDERING',
      'RESCOPY',
      'PRINCIPAL',
      'TECHNICIAN',
    ]) {
      t.ok(r.people?.includes(name), `${name} is among the people to remove from free text`);
    }
    t.notOk(r.people?.includes('HOSP'), 'an assigning authority is not a person');
  },
);

t.test('an IHE PCD-04 alert: identity, parameter, limits, priority, kind, phase, state, text', async (t) => {
  const message = [
    'MSH|^~\\&|MON|F|GW|H|20260101120000||ORU^R40^ORU_R40|2|P|2.6',
    'PID|||MRN-1||DOE^JOHN',
    'OBR|1|||196616^MDC_EVT_ALARM^MDC|||20260101120000',
    segment('OBX', {
      1: '1',
      2: 'CWE',
      3: '196616^MDC_EVT_ALARM^MDC',
      4: '1.2.1.150456.1',
      5: '196652^MDC_EVT_LO^MDC',
      8: 'PM~SP~L',
      11: 'F',
      14: '20260101115958',
    }),
    'OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.150456.2|84|262688^MDC_DIM_PERCENT^MDC|90-100||||F',
    'OBX|3|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.2.1.150456.3|start||||||F',
    'OBX|4|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.2.1.150456.4|active||||||F',
    'OBX|5|ST|68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC|1.2.1.150456.5|audio-paused||||||F',
    'OBX|6|ST|68546^MDC_ATTR_ALERT_TEXT^MDC|1.2.1.150456.8|SpO2 LOW 84 < 90 DOE||||||F',
    'OBX|7|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.147842|88|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F',
  ].join('\r');
  const r = reading(interpretHl7(Buffer.from(message), { versions }));
  t.same(r.event?.type, 'alarm');
  t.same(r.alarms, [
    {
      code: 'MDC_EVT_LO',
      system: 'MDC',
      mdc: 196652,
      origin: 'pcd-04',
      priority: 'medium',
      kind: 'physiological',
      direction: 'low',
      path: '1.2.1.150456.1',
      observedAt: '2026-01-01T11:59:58',
      parameter: {
        code: 'MDC_PULS_OXIM_SAT_O2',
        system: 'MDC',
        mdc: 150456,
        source: 'MDC_PULS_OXIM_SAT_O2',
        value: 84,
        unit: 'MDC_DIM_PERCENT',
        status: 'valid',
        path: '1.2.1.150456.2',
        referenceRange: '90-100',
      },
      limits: { low: 90, high: 100 },
      phase: 'start',
      state: 'active',
      inactivation: 'audio-paused',
      text: 'SpO2 LOW 84 < 90 DOE',
    },
  ]);
  t.same(
    r.observations?.map((o) => o.code),
    ['MDC_ECG_HEART_RATE'],
    'the facets are the alarm; another OBX stays an observation',
  );
});

t.test('a Philips MDIL-ALERT in an ORU^R01: an alarm read from its code and short text', async (t) => {
  const message = [
    header,
    'OBX|1|NM|0002-4bb8^SpO2^MDIL|1.2.1.1|84|0004-0220^%^MDIL|||||F',
    'OBX|2|TX|0002-d006^MDIL-ALERT^MDIL|1.2.1.1|***SpO2 LOW 84 < 90||||||F',
    'OBX|3|TX|MDIL-ALERT^Alert^99PHILIPS||**HR 150 > 120||||||F',
    'OBX|4|TX|MDIL-ALERT^Alert^99PHILIPS||*Ectopic HIGH||||||F',
    'OBX|5|TX|MDIL-ALERT^Alert^99PHILIPS||Leads Off||||||F',
  ].join('\r');
  const r = reading(interpretHl7(Buffer.from(message), { versions }));
  t.equal(r.event?.type, 'alarm');
  t.same(
    r.observations?.map((o) => o.code),
    ['0002-4bb8'],
    'the numeric stays an observation',
  );
  t.same(r.alarms?.[0], {
    code: '0002-d006',
    system: 'LOCAL',
    deviceCode: { code: '0002-d006', system: 'MDIL' },
    origin: 'vendor',
    path: '1.2.1.1',
    priority: 'high',
    direction: 'low',
    limits: { low: 90 },
    parameter: {
      code: 'MDC_PULS_OXIM_SAT_O2',
      system: 'MDC',
      mdc: 150456,
      value: 84,
      unit: '262688',
      status: 'valid',
      source: 'SpO2',
    },
    text: '***SpO2 LOW 84 < 90',
  });
  t.match(r.alarms?.[1], {
    priority: 'medium',
    direction: 'high',
    limits: { high: 120 },
    parameter: { code: 'MDC_ECG_HEART_RATE', value: 150 },
  });
  t.match(r.alarms?.[2], { priority: 'low', direction: 'high' });
  t.notOk(r.alarms?.[2]?.parameter, 'an unknown label makes no parameter');
  t.same(r.alarms?.[3], {
    code: 'MDIL-ALERT',
    system: 'LOCAL',
    deviceCode: { code: 'MDIL-ALERT', system: '99PHILIPS' },
    origin: 'vendor',
    text: 'Leads Off',
  });
});

t.test('PCD-04 variants: priority and type facets, no sub-ids, limits one-sided or absent', async (t) => {
  const message = [
    'MSH|^~\\&|MON|F|GW|H|20260101120000||ORU^R40^ORU_R40|3|P|2.6',
    'OBR|1|||196616^MDC_EVT_ALARM^MDC',
    'OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|||||||F',
    'OBX|2|NM|147842^MDC_ECG_HEART_RATE^MDC||150|264864^MDC_DIM_BEAT_PER_MIN^MDC|>120||||F',
    'OBX|3|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC||PH||||||F',
    'OBX|4|ST|68485^MDC_ATTR_ALERT_TYPE^MDC||ST||||||F',
    'OBX|5|ST|68480^MDC_ATTR_ALERT_SOURCE^MDC||1.1.1||||||F',
    'OBX|6|ST|68481^MDC_ATTR_EVENT_PHASE^MDC||Start Now!||||||F',
    'OBR|2|||196616^MDC_EVT_ALARM^MDC',
    'OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.1.1.1.1|VENDOR-7^Leads off^99X||||||F',
    'OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.1.2|91|262688^MDC_DIM_PERCENT^MDC|<90||||F',
    'OBX|3|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.1.1.1.6|??||||||F',
    'OBX|4|ST|68485^MDC_ATTR_ALERT_TYPE^MDC|1.1.1.1.7|??||||||F',
    'OBX|5|NM|151562^MDC_RESP_RATE^MDC|1.1.1.1.9|12|264928^MDC_DIM_RESP_PER_MIN^MDC|abc||||F',
    'OBR|3|||196616^MDC_EVT_ALARM^MDC',
    'OBX|1|CWE|196652^MDC_EVT_LO^MDC|1.4.1.1|x||||||F',
    'OBX|2|ST|NOTE^note^L|1.4.1.2|no numeric follows||||||F',
  ].join('\r');
  const r = reading(interpretHl7(Buffer.from(message), { versions }));
  const [first, second, third] = r.alarms ?? [];
  t.same(first, {
    code: 'MDC_EVT_ALARM',
    system: 'MDC',
    mdc: 196616,
    source: 'MDC_EVT_ALARM',
    origin: 'pcd-04',
    parameter: {
      code: 'MDC_ECG_HEART_RATE',
      system: 'MDC',
      mdc: 147842,
      source: 'MDC_ECG_HEART_RATE',
      value: 150,
      unit: 'MDC_DIM_BEAT_PER_MIN',
      status: 'valid',
      referenceRange: '>120',
    },
    limits: { low: 120 },
    priority: 'high',
    kind: 'technical',
  });
  t.equal(first?.phase, undefined, 'a phase that is not one word is left out');
  t.match(second, { code: 'VENDOR-7', system: 'LOCAL', limits: { high: 90 }, parameter: { value: 91 } });
  t.notOk(second?.priority ?? second?.kind, 'unknown priority and type codes are left out');
  t.same(
    r.observations?.map((o) => o.code),
    ['MDC_RESP_RATE', 'NOTE'],
    'an OBX that is not a facet stays an observation',
  );
  t.match(third, { code: 'MDC_EVT_LO', direction: 'low', path: '1.4.1.1' });
  t.notOk(third?.parameter, 'no numeric OBX after it: no parameter');
});

t.test('the people fields are read only for a device whose config keeps free text', async (t) => {
  const message = [header, ...people, 'OBX|1|TX|NOTE^note^L|1.9.1.1|seen by Dr Casey||||||F'].join('\r');
  const kept = reading(interpretHl7(Buffer.from(message), { versions, freeText: true }));
  t.ok(kept.people?.includes('QUIMBY'), 'names to remove from the free text');
  const dropped = reading(interpretHl7(Buffer.from(message), { versions, freeText: false }));
  t.equal(dropped.people, undefined, 'nothing read: the normalizer drops the free text');
  t.equal(dropped.patientId, 'MRN-448812', 'the patient id is still read, to be tokenized');
});
