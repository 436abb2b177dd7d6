import type { DeviceReading } from '@attache/core';
import { GatewayError } from '@attache/core';
import t from 'tap';
import { rig, settle } from './harness.js';

const measured = (readings: DeviceReading[]) => readings.filter((r) => r.event === undefined);

t.test('N poll cycles give N sets of readings with MDC codes and UCUM units', async (t) => {
  const { clock, device, readings, report } = await rig();
  await clock.advance(4000);
  const sets = measured(readings);
  t.equal(sets.length, 5, 'one at initialization, then one per second');
  t.equal(device.seen('Q'), 1, 'ICC once');
  t.equal(device.seen('R'), 1, 'identification once');
  const first = sets[0]?.observations ?? [];
  const by = (code: string) => first.find((o) => o.code === code);
  t.same(
    [
      by('MDC_PRESS_AWAY_INSP_PEAK')?.value,
      by('MDC_PRESS_AWAY_INSP_PEAK')?.unit,
      by('MDC_PRESS_AWAY_INSP_PEAK')?.mdc,
    ],
    [25, 'mbar', 151817],
  );
  t.same([by('MDC_VOL_AWAY_TIDAL')?.value, by('MDC_VOL_AWAY_TIDAL')?.unit], [500, 'mL']);
  t.same([by('MDC_VOL_MINUTE_AWAY')?.value, by('MDC_VOL_MINUTE_AWAY')?.unit], [7.3, 'L/min']);
  t.same([by('MDC_RESP_RATE')?.value, by('MDC_RESP_RATE')?.unit], [14, '/min']);
  t.same([by('MDC_CONC_AWAY_O2_INSP')?.value, by('MDC_PRESS_AWAY_END_EXP_POS')?.value], [40, 5]);
  t.same(by('MDC_PRESS_AWAY_INSP_MEAN')?.deviceCode, { code: 'CP1:73', system: 'MEDIBUS' });
  t.same(by('CP1:05'), {
    code: 'CP1:05',
    system: 'LOCAL',
    value: 1.5,
    unit: '',
    status: 'valid',
    source: 'CP1:05',
  });
  t.same(
    sets.map((s) => s.observations?.find((o) => o.code === 'MDC_RESP_RATE')?.value),
    device.sentMeasurements.map((m) => Number(m.get(0xd6))),
    'each set carries the values of its own reply',
  );
  t.same(sets[0]?.instrument, { name: 'Evita4', version: '04.20' });
  t.equal(sets[0]?.protocol, 'medibus');
  t.equal(report.counts.stored, readings.length);
  t.equal(report.counts.malformed, 0);
});

t.test('settings and alarms become events when they change', async (t) => {
  const { clock, device, readings } = await rig();
  await clock.advance(2000);
  const settings = readings.filter((r) => r.event?.type === 'medibus.settings');
  t.equal(settings.length, 1, 'settings sent once while unchanged');
  t.same(settings[0]?.event?.detail, { 'setting:01': '40', 'setting:04': '0.50' });
  t.same(
    readings.filter((r) => r.event?.type === 'alarm').map((r) => r.event?.detail),
    [{ active: 0 }],
  );
  device.alarms = [{ priority: 20, code: 0x2a, text: 'Paw high' }];
  device.settings.set(0x01, '60');
  await clock.advance(1000);
  const alarm = readings.filter((r) => r.event?.type === 'alarm').at(-1);
  t.same(alarm?.alarms, [
    {
      code: 'MEDIBUS-2A',
      system: 'LOCAL',
      origin: 'vendor',
      priority: 'high',
      deviceCode: { code: '2A', system: 'MEDIBUS' },
      text: 'Paw high',
    },
  ]);
  t.equal(readings.filter((r) => r.event?.type === 'medibus.settings').length, 2);
});

t.test('the device’s own commands are echoed', async (t) => {
  const { device } = await rig();
  device.sendCommand('0');
  for (let i = 0; i < 5; i++) await settle();
  t.equal(device.echoes, 1);
});

t.test('a dropped or corrupt reply is retried and counted, and no reading is lost', async (t) => {
  const { clock, device, readings, report } = await rig();
  device.faults.drop = 1;
  await clock.advance(1300);
  t.equal(report.unansweredCount, 1, 'the missing reply is counted');
  device.faults.corrupt = 1;
  await clock.advance(1000);
  t.equal(report.counts.malformed, 1, 'the corrupt reply is counted as malformed');
  t.ok(report.malformedReasons.includes('bad checksum'));
  await clock.advance(1000);
  t.equal(measured(readings).length, 4, 'every cycle still delivered its set');
  t.same(report.presence, [], 'never reported lost');
});

t.test(
  'a silent device is reported lost, initialized again after the link timeout, and recovered',
  async (t) => {
    const { clock, device, readings, report } = await rig();
    device.faults.silent = true;
    await clock.advance(1000 + 3 * 200);
    t.same(report.presence, [false], 'lost after the retries');
    const icc = device.seen('Q');
    await clock.advance(3000);
    t.equal(device.seen('Q'), icc + 1, 'ICC again after the link timeout');
    const before = measured(readings).length;
    device.faults.silent = false;
    await clock.advance(3000 + 1000);
    t.same(report.presence, [false, true], 'answering again');
    t.ok(measured(readings).length > before, 'readings flow again');
  },
);

t.test('a long period keeps the link alive with NOPs', async (t) => {
  const { clock, device } = await rig({ poll: { periodMs: 10_000 } });
  await clock.advance(9000);
  t.equal(device.seen('0'), 6, 'a NOP every 1.5 s while idle');
  t.equal(device.seen('$'), 1);
});

t.test('a refused reading is counted, and an event not stored is sent again next cycle', async (t) => {
  let refuse = true;
  const stored: DeviceReading[] = [];
  const { clock, report } = await rig({
    sink: async (r) => {
      if (refuse) throw new GatewayError('ATTACHE_CACHE_FULL', 'full');
      stored.push(r);
    },
  });
  t.equal(report.counts.refused, 3, 'measurements, settings and alarms refused');
  refuse = false;
  await clock.advance(1000);
  t.same(
    stored.map((r) => r.event?.type ?? 'measured'),
    ['measured', 'medibus.settings', 'alarm'],
    'the events come again',
  );
});

t.test('a cycle is skipped while the previous one is still being stored', async (t) => {
  const release: (() => void)[] = [];
  const { clock, device, session, report } = await rig({
    sink: () =>
      new Promise<void>((resolve) => {
        release.push(resolve);
      }),
  });
  await clock.advance(1000);
  t.equal(device.seen('$'), 1, 'no new poll while storing');
  for (const r of release) r();
  await session.drained();
  t.ok(report.counts.stored >= 1);
});

t.test('a malformed reply body is counted, and end() stops every timer', async (t) => {
  const { clock, device, session, report } = await rig();
  device.settings.set(0x02, 'toolongvalue');
  device.alarms = [{ priority: 3, code: 0x10, text: '' }];
  session.receive(Buffer.from('\x01$1', 'latin1'));
  session.end();
  session.end();
  t.equal(report.counts.malformed, 1, 'the cut-off reply is counted');
  const polls = device.seen('$');
  await clock.advance(10_000);
  t.equal(device.seen('$'), polls, 'nothing sent after end()');
  session.receive(Buffer.from('\x01Q52\r', 'latin1'));
  t.equal(clock.pending, 0);
});
