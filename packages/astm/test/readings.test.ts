import { astmReadings, astmTime, parseAstmMessage } from '@attache/astm';
import t from 'tap';

t.test(
  'ASTM readings: one per order with its patient and specimen, LOINC when the test id says so',
  async (t) => {
    const message = parseAstmMessage(
      [
        'H|\\^&|||AN^S1|||||||P|1|20240627101500',
        'P|1||PA',
        'O|1|SP1||^^^GLU',
        'R|1|6690-2^WBC^LN|7.1|10^3/uL||H~N||P',
        'R|2|^^^GLU||mg/dL||||X',
        'P|2||PB',
        'O|1|SP2',
        'R|1|^^^NA|POS|||||F||||202406271010',
        'C|1|I|hemolyzed|G',
        'L|1|N',
      ].join('\r'),
    );
    const readings = astmReadings(message, { comments: true });
    t.same(
      readings.map((r) => [r.patientId, r.specimenId, r.observations?.length]),
      [
        ['PA', 'SP1', 2],
        ['PB', 'SP2', 1],
      ],
    );
    const [wbc, glu] = readings[0]?.observations ?? [];
    t.match(wbc, { code: '6690-2', system: 'LOINC', value: 7.1, status: 'questionable', source: '6690-2' });
    t.match(glu, { code: 'GLU', system: 'LOCAL', value: null, status: 'unavailable' });
    t.match(readings[1]?.observations?.[0], {
      value: 'POS',
      observedAt: '2024-06-27T10:10:00',
      comments: ['hemolyzed'],
    });
    t.same(readings[0]?.instrument, { name: 'AN', serial: 'S1' });
    t.equal(readings[0]?.deviceTime, '2024-06-27T10:15:00');
    t.notOk(astmReadings(message, { comments: false })[1]?.observations?.[0]?.comments, 'comments off');
    t.equal(astmTime('2024'), undefined);
  },
);
