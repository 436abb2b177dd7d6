import {
  astmChecksum,
  buildNoInformationReply,
  DEFAULT_DELIMITERS,
  decodeEscapes,
  encodeEscapes,
  frameAstmRecords,
  parseAstmMessage,
} from '@attache/astm';
import { isGatewayError } from '@attache/core';
import t, { type Test } from 'tap';

/** The constructed ASTM host-query sample (astm_host_query_constructed.bin), byte for byte. */
const SAMPLE = Buffer.from(
  '\x05\x021H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627135000\r\x0394\r\n' +
    '\x022Q|1|^^SMP0001||^^^ALL||||||||O\r\x0343\r\n\x023L|1|N\r\x0306\r\n\x04',
  'latin1',
);
const SAMPLE_RECORDS = [
  'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627135000',
  'Q|1|^^SMP0001||^^^ALL||||||||O',
  'L|1|N',
];

const RESULTS = [
  'H|\\^&|||cobas^1.0|||||||P|LIS2-A2|20240627135000',
  'P|1|MRN123|LAB9||Doe^Jane||19800101|F||1 Main St||555-0100|Dr Who',
  'O|1|SMP0001|12^3|^^^GLU\\^^^NA|R||||||N||||||||||||||F',
  'R|1|^^^GLU|5.4|mmol/L|3.9-6.1|N||F||OPERATOR|20240627130000|20240627131000|c311',
  'C|1|I|^hemolysed^index 2|I',
  'R|2|^^^NA|150|mmol/L|135-145|H\\A||F',
  'L|1|N',
].join('\r');

function refusal(t: Test, text: string, reason: RegExp): void {
  let caught: unknown;
  try {
    parseAstmMessage(text);
  } catch (err) {
    caught = err;
  }
  t.ok(isGatewayError(caught, 'ATTACHE_MALFORMED'), `${reason.source}: ATTACHE_MALFORMED`);
  t.match((caught as Error).message, reason);
  t.notMatch((caught as Error).message, /SECRET/, 'no content in the message');
}

t.test('the sample: header identity, query, terminator', (t) => {
  const m = parseAstmMessage(`${SAMPLE_RECORDS.join('\r')}\r`);
  t.same(m.header.delimiters, DEFAULT_DELIMITERS);
  t.same(m.header.sender, { name: 'XN-550', components: ['XN-550', '00-24', '22723'] });
  t.equal(m.header.processingId, 'P');
  t.equal(m.header.version, 'E1394-97');
  t.equal(m.header.timestamp, '20240627135000');
  t.same(m.queries, [
    {
      sequence: '1',
      startingRange: ['', '', 'SMP0001'],
      specimenId: 'SMP0001',
      testIds: [{ code: 'ALL', components: ['', '', '', 'ALL'] }],
      statusCode: 'O',
    },
  ]);
  t.same(m.terminator, { sequence: '1', code: 'N' });
  t.end();
});

t.test('results, orders, comments attached, patient reduced to its ID', (t) => {
  const m = parseAstmMessage(RESULTS);
  t.same(m.patients, [
    {
      sequence: '1',
      patientId: 'MRN123',
      patientIdField: 'P.3',
      presentFields: ['name', 'birthdate', 'sex', 'address', 'phone', 'attendingPhysician'],
      comments: [],
    },
  ]);
  t.notMatch(
    JSON.stringify({ ...m, people: [] }),
    /Doe|Jane|19800101|Main St|555-0100|Dr Who|OPERATOR/,
    'no PHI copied outside people',
  );
  t.same(
    m.people,
    ['MRN123', 'LAB9', 'Doe', 'Jane', '555-0100', 'Dr Who', 'SMP0001', 'OPERATOR'],
    'people: ids, names, phone, physician, specimen and operator (R.11), for de-identifying comments',
  );
  const [order] = m.orders;
  t.equal(order?.specimenId, 'SMP0001');
  t.same(order?.instrumentSpecimenId, ['12', '3']);
  t.same(
    order?.testIds.map((id) => id.code),
    ['GLU', 'NA'],
  );
  t.equal(order?.patientIndex, 0);
  t.equal(order?.reportType, 'F');
  t.equal(order?.actionCode, 'N');
  const [glu, na] = m.results;
  t.match(glu, {
    orderIndex: 0,
    testId: { code: 'GLU' },
    value: '5.4',
    units: 'mmol/L',
    referenceRange: '3.9-6.1',
    abnormalFlags: ['N'],
    status: 'F',
    startedAt: '20240627130000',
    completedAt: '20240627131000',
    instrumentId: 'c311',
  });
  t.same(glu?.comments, [
    { sequence: '1', source: 'I', text: 'hemolysed index 2', type: 'I', attachedTo: 'result' },
  ]);
  t.same(na?.abnormalFlags, ['H', 'A']);
  t.same(na?.comments, []);
  t.equal(m.comments.length, 1);
  t.end();
});

t.test('comments attach to the record they follow', (t) => {
  const m = parseAstmMessage(
    'H|\\^&\rC|1|L|on message\rP|1||LAB7\rC|1|L|on patient\rO|1|S1\rC|1|L|on order\rM|1|x\rS|1|y\rL|1',
  );
  t.same(
    m.comments.map((c) => [c.attachedTo, c.text]),
    [
      ['message', 'on message'],
      ['patient', 'on patient'],
      ['order', 'on order'],
    ],
  );
  t.same(
    m.orders[0]?.comments.map((c) => c.text),
    ['on order'],
  );
  t.same(
    m.patients[0]?.comments.map((c) => c.text),
    ['on patient'],
    "a C after a P is that patient's",
  );
  t.same(m.patients[0], {
    sequence: '1',
    patientId: 'LAB7',
    patientIdField: 'P.4',
    presentFields: [],
    comments: m.patients[0]?.comments,
  });
  t.equal(m.manufacturer, 2);
  t.same(m.terminator, { sequence: '1', code: null });
  t.end();
});

t.test('custom delimiters from H, escapes decoded', (t) => {
  // GeneXpert style: field |, repeat @, component ^, escape \
  const m = parseAstmMessage(
    'H|@^\\|||GeneXpert^4.7\rO|1|A\\F\\B||^^^MTB@^^^RIF\rR|1|^^^MTB|DETECTED\\S\\LOW|||A@N\rL|1|N\r',
  );
  t.same(m.header.delimiters, { field: '|', repeat: '@', component: '^', escape: '\\' });
  t.equal(m.header.sender.name, 'GeneXpert');
  t.equal(m.orders[0]?.specimenId, 'A|B');
  t.same(
    m.orders[0]?.testIds.map((id) => id.code),
    ['MTB', 'RIF'],
  );
  t.equal(m.results[0]?.value, 'DETECTED^LOW');
  t.same(m.results[0]?.abnormalFlags, ['A', 'N']);
  t.equal(m.results[0]?.orderIndex, 0);
  t.equal(m.orders[0]?.patientIndex, null, 'no P record');
  t.end();
});

t.test('escape sequences', (t) => {
  const d = DEFAULT_DELIMITERS;
  t.equal(decodeEscapes('a&F&b&S&c&R&d&E&e', d), 'a|b^c\\d&e');
  t.equal(decodeEscapes('img&X4142&.png&H&!&N&', d), 'imgAB.png!', 'hex and highlighting');
  t.equal(decodeEscapes('5 & 6 &Q& x', d), '5 & 6 &Q& x', 'unknown and unterminated kept');
  t.equal(encodeEscapes('A|B^C\\D&E', d), 'A&F&B&S&C&R&D&E&E');
  t.equal(decodeEscapes(encodeEscapes('x|^\\&y', d), d), 'x|^\\&y', 'round trip');
  t.end();
});

t.test('R before any O, empty and short fields', (t) => {
  const m = parseAstmMessage('H|\\^&\nP|1\nR|1|^^^^WBC^1|7.2\nR\nQ|1\nL|1|N');
  t.same(m.patients[0], {
    sequence: '1',
    patientId: null,
    patientIdField: null,
    presentFields: [],
    comments: [],
  });
  t.match(m.queries[0], { startingRange: [], specimenId: null, testIds: [], statusCode: null });
  t.equal(m.results[0]?.orderIndex, null);
  t.equal(m.results[0]?.patientIndex, 0);
  t.equal(m.results[0]?.testId.code, 'WBC', 'Sysmex: code in the 5th component');
  t.match(m.results[1], { sequence: null, value: '', units: null, testId: { code: '', components: [] } });
  t.equal(m.header.messageControlId, null);
  t.equal(m.header.sender.name, '');
  t.end();
});

t.test('malformed messages are refused with ATTACHE_MALFORMED and no content', (t) => {
  refusal(t, '', /no records/);
  refusal(t, '\r\n', /no records/);
  refusal(t, 'P|1|SECRET\rL|1', /record 1: message does not start with an H record/);
  refusal(t, 'H|\\^', /four distinct delimiters/);
  refusal(t, 'H|\\^^|SECRET', /four distinct delimiters/);
  refusal(t, 'H|abc|SECRET', /four distinct delimiters/);
  refusal(t, 'H|\\^&\rZ|SECRET', /record 2: unknown record type/);
  refusal(t, 'H|\\^&\rRSECRET|1', /record 2: record type not followed by the field delimiter/);
  refusal(t, 'H|\\^&\rL|1\rR|1|SECRET', /record 3: record after the L record/);
  refusal(t, 'H|\\^&\rH|\\^&|SECRET', /record 2: second H record/);
  t.end();
});

t.test('host query: frameAstmRecords reproduces the sample byte for byte', (t) => {
  const frames = frameAstmRecords(SAMPLE_RECORDS);
  t.same(Buffer.concat([Buffer.from([0x05]), ...frames, Buffer.from([0x04])]), SAMPLE);
  t.equal(
    astmChecksum(Buffer.from('1H|\\^&|||ABX|||||||P|E1394-97|20220727121551\r\x03', 'latin1')),
    '58',
    'Pentra',
  );
  t.end();
});

t.test('host query: the no-information reply', (t) => {
  const records = buildNoInformationReply({ timestamp: '20240627135001', senderName: 'Attache|GW' });
  t.same(records, ['H|\\^&|||Attache&F&GW|||||||P|E1394-97|20240627135001', 'L|1|I']);
  const reply = parseAstmMessage(records.join('\r'));
  t.equal(reply.header.sender.name, 'Attache|GW');
  t.same(reply.terminator, { sequence: '1', code: 'I' });
  const frames = frameAstmRecords(buildNoInformationReply({ timestamp: '20240627135001' }));
  t.equal(frames.length, 2);
  t.same(frames[1], Buffer.from('\x022L|1|I\r\x0300\r\n', 'latin1'));
  t.throws(() => buildNoInformationReply({ timestamp: '2024' }), TypeError);
  t.throws(() => buildNoInformationReply({ timestamp: '20240627135001', processingId: 'PP' }), TypeError);
  t.end();
});

t.test('host query: long records split at 240 characters, FN wraps', (t) => {
  const frames = frameAstmRecords([`C|1|L|${'x'.repeat(300)}`], 7);
  t.equal(frames.length, 2);
  t.equal(frames[0]?.subarray(0, 2).toString('latin1'), '\x027');
  t.equal(frames[0]?.length, 247, 'the longest frame');
  t.equal(frames[0]?.[242], 0x17, 'ETB');
  t.equal(frames[1]?.subarray(0, 2).toString('latin1'), '\x020');
  t.equal(frames[1]?.at(-5), 0x03, 'ETX');
  t.throws(() => frameAstmRecords(['L|1\r']), TypeError);
  t.throws(() => frameAstmRecords(['L|1'], 8), TypeError);
  t.end();
});

t.test('each O, R and C record belongs to the P record above it', (t) => {
  const m = parseAstmMessage(
    'H|\\^&\rP|1||PA\rO|1|SA\rR|1|^^^GLU|5\rP|2||PB\rC|1|L|on B|G\rR|1|^^^NA|140\rL|1|N',
  );
  t.same(
    m.results.map((r) => [r.orderIndex, r.patientIndex]),
    [
      [0, 0],
      [null, 1],
    ],
    "an R after the second P, without an O of its own, is not in the first patient's order",
  );
  t.same(
    m.patients.map((p) => p.comments.map((c) => c.text)),
    [[], ['on B']],
  );
  t.throws(
    () =>
      parseAstmMessage('H|\\^&\rO|1|S0\rR|1|^^^K|4\rP|1||PA\rR|1|^^^GLU|5\rP|2||PB\rR|1|^^^NA|140\rL|1|N'),
    {
      code: 'ATTACHE_MALFORMED',
      message: 'ASTM record 2: O or R record before the first of several P records',
    },
    'an order before the first of several patients belongs to no one',
  );
  t.equal(
    parseAstmMessage('H|\\^&\rR|1|^^^K|4\rP|1||PA\rL|1|N').results[0]?.patientIndex,
    null,
    'with a single patient, as before (the readings give it that patient)',
  );
  t.end();
});
