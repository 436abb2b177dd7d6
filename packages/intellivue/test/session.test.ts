import type { DeviceReading } from '@attache/core';
import { GatewayError } from '@attache/core';
import t from 'tap';
import { rig, settle } from './harness.js';

const numerics = (readings: DeviceReading[]) => readings.filter((r) => r.event === undefined);

t.test(
  'association, MDS create, then N poll cycles give N sets of numerics with MDC codes and UCUM units',
  async (t) => {
    const { clock, monitor, readings, report } = await rig();
    t.equal(monitor.associations, 1);
    t.equal(monitor.mdsResults, 1, 'the MDS create event is answered');
    await clock.advance(4000);
    const sets = numerics(readings);
    t.equal(sets.length, 5);
    t.equal(monitor.polled(6), 5);
    t.equal(monitor.polled(54), 5, 'alerts polled each cycle');
    const obs = sets[0]?.observations ?? [];
    const by = (mdc: number) => obs.find((o) => o.mdc === mdc);
    t.same(
      [by(147842)?.code, by(147842)?.value, by(147842)?.unit, by(147842)?.status, by(147842)?.deviceCode],
      ['147842', 60, '/min', 'valid', { code: '0002-4182', system: 'MDIL' }],
    );
    t.same([by(150456)?.value, by(150456)?.unit], [97, '%']);
    t.same([by(151562)?.value, by(151562)?.unit], [14, '/min']);
    t.same(
      [150021, 150022, 150023].map((m) => [by(m)?.value, by(m)?.unit]),
      [
        [120, 'mm[Hg]'],
        [80, 'mm[Hg]'],
        [93, 'mm[Hg]'],
      ],
      'a compound value gives each of its parts',
    );
    t.same([by(150344)?.value, by(150344)?.unit], [36.6, 'Cel']);
    t.same(
      sets.map((s) => s.observations?.find((o) => o.mdc === 147842)?.value),
      monitor.sentNumerics.map((n) => n[0]?.value),
      'each set carries its own poll',
    );
    t.equal(report.counts.malformed, 0);
    t.same(
      readings.filter((r) => r.event?.type === 'alarm').map((r) => r.event?.detail),
      [{ active: 0 }],
      'the (empty) alert set once',
    );
  },
);

t.test(
  'alerts become alarm events when they change; states make values questionable or unavailable',
  async (t) => {
    const { clock, monitor, readings } = await rig();
    monitor.alerts = [{ source: 0x4bb8, code: 0x0304, type: 4, text: 'SpO2 LOW' }];
    await clock.advance(1000);
    const alarm = readings.filter((r) => r.event?.type === 'alarm').at(-1);
    t.same(alarm?.alarms?.[0], {
      code: String(3 * 65536 + 0x0304),
      system: 'MDC',
      mdc: 3 * 65536 + 0x0304,
      origin: 'vendor',
      kind: 'physiological',
      priority: 'high',
      deviceCode: { code: '0003-0304', system: 'MDIL' },
      parameter: {
        code: '150456',
        system: 'MDC',
        mdc: 150456,
        value: null,
        unit: '',
        status: 'unavailable',
        deviceCode: { code: '0002-4bb8', system: 'MDIL' },
      },
      text: 'SpO2 LOW',
    });
    await clock.advance(1000);
    t.equal(
      readings.filter((r) => r.event?.type === 'alarm').length,
      2,
      'unchanged alerts are not sent again',
    );
  },
);

t.test('a linked (multi-part) poll result is collected whole', async (t) => {
  const { clock, readings } = await rig({ monitor: { linked: true }, poll: { ask: ['numerics'] } });
  await clock.advance(1000);
  t.equal(numerics(readings)[0]?.observations?.length, 7);
});

t.test('a dropped or corrupt reply is retried and counted', async (t) => {
  const { clock, monitor, readings, report } = await rig();
  monitor.faults.drop = 1;
  await clock.advance(1300);
  t.equal(report.unansweredCount, 1);
  monitor.faults.corrupt = 1;
  await clock.advance(1000);
  t.equal(report.counts.malformed, 1);
  t.ok(report.malformedReasons.includes('bad FCS'));
  t.equal(numerics(readings).length, 3, 'every cycle still delivered');
  t.same(report.presence, []);
});

t.test('silence: reported lost, a new association after the link timeout, recovered', async (t) => {
  const { clock, monitor, readings, report } = await rig();
  monitor.faults.silent = true;
  await clock.advance(1000 + 3 * 200);
  t.same(report.presence, [false]);
  const associations = monitor.associations;
  await clock.advance(3000);
  t.equal(monitor.associations, associations + 1, 'associating again');
  monitor.faults.silent = false;
  const before = numerics(readings).length;
  await clock.advance(4000);
  t.same(report.presence, [false, true]);
  t.ok(numerics(readings).length > before);
});

t.test('a release is answered and an abort taken: both lead to a new association', async (t) => {
  const { clock, monitor, readings } = await rig();
  monitor.release();
  await settle();
  await clock.advance(500);
  t.equal(monitor.releaseResponses, 1, 'the release request is answered');
  t.equal(monitor.associations, 2);
  monitor.abort();
  await settle();
  await clock.advance(500);
  t.equal(monitor.associations, 3);
  const before = numerics(readings).length;
  await clock.advance(2000);
  t.ok(numerics(readings).length > before, 'polls go on');
});

t.test('a long period keeps the association alive with MDS polls', async (t) => {
  const { clock, monitor } = await rig({ poll: { periodMs: 10_000 } });
  await clock.advance(9000);
  t.equal(monitor.polled(33), 6);
  t.equal(monitor.polled(6), 1);
});

t.test('a refused reading is counted; an alarm event not stored is sent again', async (t) => {
  let refuse = true;
  const stored: DeviceReading[] = [];
  const { clock, report } = await rig({
    sink: async (r) => {
      if (refuse) throw new GatewayError('ATTACHE_CACHE_FULL', 'full');
      stored.push(r);
    },
  });
  t.equal(report.counts.refused, 2);
  refuse = false;
  await clock.advance(1000);
  t.same(
    stored.map((r) => r.event?.type ?? 'numerics'),
    ['numerics', 'alarm'],
  );
});

t.test('a PDU shorter than its lengths is counted, and end() stops everything', async (t) => {
  const { clock, monitor, session, report } = await rig();
  const { encodeFrame } = await import('../src/index.js');
  session.receive(encodeFrame(Buffer.from('e1000002000200ff', 'hex')));
  t.equal(report.counts.malformed, 1);
  session.receive(Buffer.from('c01101', 'hex'));
  session.end();
  session.end();
  t.equal(report.counts.malformed, 2, 'the cut-off frame is counted');
  const polls = monitor.polled(6);
  await clock.advance(10_000);
  t.equal(monitor.polled(6), polls);
  session.receive(Buffer.from('c0c1', 'hex'));
  t.equal(clock.pending, 0);
});

t.test('the driver opens a session per link and holds nothing else', async (t) => {
  const { IntelliVueDriver } = await import('../src/index.js');
  const { ManualClock } = await import('@attache/core');
  const { TestReport, poll } = await import('./harness.js');
  const written: Buffer[] = [];
  const driver = new IntelliVueDriver({
    format: { kind: 'intellivue', poll, codes: {}, units: {}, freeText: false },
  });
  t.equal(driver.protocol, 'intellivue');
  const session = driver.open(
    {
      name: 'x',
      open: true,
      write: (b) => written.push(b) > 0,
      pause: () => undefined,
      resume: () => undefined,
      close: () => undefined,
    },
    {
      deviceId: 'm',
      sink: async () => undefined,
      refusing: () => false,
      report: new TestReport(),
      clock: new ManualClock(),
    },
  );
  t.equal(written.length, 1, 'the association request is sent at once');
  session.end();
  await driver.close();
});
