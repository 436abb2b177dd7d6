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

t.test(
  'C records after H, P and O are notes; with comments on the reading carries the people fields',
  async (t) => {
    const message = parseAstmMessage(
      [
        'H|\\^&|||AN^S1|||||||P|1|20240627101500',
        'C|1|L|batch run by Dr Who|G',
        'P|1|MRN77||ID3|Quimby^Hortense||19470312|F||12 Elm St||555-0100|Welby^Marcus',
        'C|1|L|family called, daughter Hattie|G',
        // O.17 ordering physician.
        `O|1|SP1||^^^GLU${'|'.repeat(12)}Casey^Ben`,
        'C|1|L|drawn by nurse Kelly|G',
        'R|1|^^^GLU|5.4|mmol/L||N||F||Kildare',
        'C|1|I|repeat verified by Kildare|G',
        'L|1|N',
      ].join('\r'),
    );
    const [reading] = astmReadings(message, { comments: true });
    t.same(reading?.notes, ['batch run by Dr Who', 'family called, daughter Hattie', 'drawn by nurse Kelly']);
    t.same(reading?.observations?.[0]?.comments, ['repeat verified by Kildare']);
    for (const name of ['MRN77', 'ID3', 'Quimby', 'Hortense', '555-0100', 'Welby', 'SP1', 'Casey', 'Kildare'])
      t.ok(reading?.people?.includes(name), `${name} is among the people`);
    const [off] = astmReadings(message, { comments: false });
    t.equal(off?.notes, undefined, 'comments off: no notes');
    t.equal(off?.people, undefined, 'and no people');
  },
);

t.test(
  "several patients: each reading holds its own patient's results and notes, never another's",
  async (t) => {
    const message = parseAstmMessage(
      [
        'H|\\^&|||AN^S1|||||||P|1|20240627101500',
        'C|1|L|batch note|G',
        'P|1||PA||Alpha^Ann',
        'C|1|L|note on Alpha|G',
        'O|1|SA||^^^GLU',
        'R|1|^^^GLU|5.4|mmol/L',
        'P|2||PB||Bravo^Ben',
        'C|1|L|note on Bravo|G',
        'R|1|^^^NA|140|mmol/L',
        'R|2|^^^K|4.1|mmol/L',
        'P|3||PC',
        'O|1|SC1||^^^GLU',
        'R|1|^^^GLU|6.0|mmol/L',
        'O|2|SC2||^^^NA',
        'R|1|^^^NA|138|mmol/L',
        'L|1|N',
      ].join('\r'),
    );
    const readings = astmReadings(message, { comments: true });
    t.same(
      readings.map((r) => [r.patientId, r.specimenId, r.observations?.map((o) => o.code), r.notes]),
      [
        ['PA', 'SA', ['GLU'], ['batch note', 'note on Alpha']],
        ['PC', 'SC1', ['GLU'], ['batch note']],
        ['PC', 'SC2', ['NA'], ['batch note']],
        ['PB', undefined, ['NA', 'K'], ['batch note', 'note on Bravo']],
      ],
      "Bravo's results (no O of his own) are his, not in Alpha's order; each patient's notes stay with them",
    );
  },
);
