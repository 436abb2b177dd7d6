import t from 'tap';
import { collect } from '../src/cycle.js';
import {
  encodeReply,
  measurement,
  medibusValue,
  parseAlarms,
  parseIdentity,
  parseTexts,
  probeRequest,
  recognizes,
  splitBlocks,
} from '../src/index.js';
import { rig } from './harness.js';

const b = (s: string) => Buffer.from(s, 'latin1');

t.test('fixed-width blocks: a partial block or a code that is not hex refuses the reply', async (t) => {
  t.same(splitBlocks(b('7D  25D6  14'), 6), [
    { code: 0x7d, text: '  25' },
    { code: 0xd6, text: '  14' },
  ]);
  t.equal(splitBlocks(b('7D  2'), 6), undefined);
  t.equal(splitBlocks(b('ZZ  25'), 6), undefined);
});

t.test('values: numbers, or null for blanks and dashes', async (t) => {
  t.same(['  25', ' 7.3', '-1.5', ' .5', '----', '    ', '1e3'].map(medibusValue), [
    25,
    7.3,
    -1.5,
    0.5,
    null,
    null,
    null,
  ]);
  t.same(measurement(1, 0x7d, '----').status, 'unavailable');
  t.same(measurement(2, 0x7d, '  25'), {
    code: 'CP2:7D',
    system: 'LOCAL',
    value: 25,
    unit: '',
    status: 'valid',
    source: 'CP2:7D',
  });
});

t.test('alarms: priorities, codes and phrases; a partial block refuses the reply', async (t) => {
  const alarms = parseAlarms(b('@2APaw high    902Apnea       1FFLeak        011            '));
  t.same(
    alarms?.map((a) => [a.code, a.priority, a.text]),
    [
      ['MEDIBUS-2A', 'high', 'Paw high'],
      ['MEDIBUS-02', 'medium', 'Apnea'],
      ['MEDIBUS-FF', 'low', 'Leak'],
      ['MEDIBUS-11', 'info', undefined],
    ],
  );
  t.equal(parseAlarms(b('@2APaw')), undefined);
  t.equal(parseAlarms(b('@ZZPaw high    ')), undefined);
});

t.test('text messages and identification', async (t) => {
  t.same(parseTexts(b('107STANDBY\x03214SIGH')), [
    { code: 0x10, text: 'STANDBY' },
    { code: 0x21, text: 'SIGH' },
  ]);
  t.equal(parseTexts(b('109SHORT')), undefined, 'a length past the end');
  t.equal(parseTexts(b('ZZ1A')), undefined);
  t.same(parseIdentity(b("0161'Evita4'04.20")), { name: 'Evita4', version: '04.20' });
  t.same(parseIdentity(b('Savina\x07')), { name: 'Savina' });
  t.same(parseIdentity(b('')), {});
});

t.test('the probe recognizes the ICC reply only', async (t) => {
  t.same(probeRequest, b('\x1bQ6C\r'));
  t.ok(recognizes(encodeReply(0x51)));
  t.notOk(recognizes(encodeReply(0x30)));
  t.notOk(recognizes(b('\x01Q53\r')));
});

t.test(
  'texts, code page 2 and alarm limits are asked when configured; a bad reply body is refused',
  async (t) => {
    const { device, readings } = await rig({
      poll: { ask: ['text', 'alarm-limits', 'measurements-cp2', 'measurements', 'settings'] },
    });
    t.equal(device.seen('*'), 1);
    t.equal(device.seen('%'), 1);
    t.equal(device.seen('&'), 1);
    t.equal(device.seen('+'), 1, 'code page 2 asked');
    t.ok(
      readings[0]?.observations?.some((o) => o.code === 'CP2:05'),
      'its values kept as device codes',
    );
    const text = readings.find((r) => r.event?.type === 'medibus.text');
    t.same([text?.event?.detail, text?.notes], [{ codes: '10' }, ['STANDBY']]);
    const settings = readings.find((r) => r.event?.type === 'medibus.settings');
    t.same(settings?.event?.detail, {
      'setting:01': '40',
      'setting:04': '0.50',
      'low:D6': '5',
      'low:7D': '5',
      'high:D6': '40',
      'high:7D': '40',
    });
  },
);

t.test('a reply body that does not split into its blocks is refused whole', async (t) => {
  const cycle = { observations: [], raw: [] };
  const reply = (command: number, data: string) => ({
    kind: 'reply' as const,
    command,
    data: b(data),
    length: 4,
  });
  t.equal(collect(cycle, reply(0x24, '7D  2')), 'measured data not in 6-character blocks');
  t.equal(collect(cycle, reply(0x29, '01  40')), 'settings not in fixed-width blocks');
  t.equal(collect(cycle, reply(0x27, '@2A')), 'alarms not in 15-character blocks');
  t.equal(collect(cycle, reply(0x2a, '109')), 'text messages malformed');
  t.equal(collect(cycle, reply(0x30, '')), undefined, 'a NOP adds nothing');
  t.same(cycle, { observations: [], raw: [b('')] });
});
