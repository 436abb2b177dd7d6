import {
  type ByteLink,
  DeviceReport,
  GatewayError,
  ManualClock,
  type ReadingSink,
  validateConfig,
} from '@attache/core';
import {
  type LogEntry,
  oruR01Message,
  parseMllpAck,
  pcd01VitalSigns,
  recordingLogger,
} from '@attache/devkit';
import { encodeMllp, Hl7Driver, maxPendingAcks } from '@attache/hl7';
import t from 'tap';

function hl7Format(extra: Record<string, unknown> = {}) {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      { id: 'pump-1', adapter: 'rs232', port: { path: '/dev/null' }, format: { kind: 'hl7-mllp', ...extra } },
    ],
  });
  const device = config.devices[0];
  if (device?.adapter !== 'rs232' || device.format.kind !== 'hl7-mllp') throw new Error('not hl7');
  return device.format;
}

/** A session on a link held in memory: the ACKs written, pauses, resumes and closes. */
function rig(sink: ReadingSink, format = hl7Format()) {
  const written: Buffer[] = [];
  const events: string[] = [];
  const link: ByteLink = {
    name: 'memory',
    open: true,
    write: (bytes) => {
      written.push(bytes);
      return true;
    },
    pause: () => events.push('pause'),
    resume: () => events.push('resume'),
    close: () => events.push('close'),
  };
  const clock = new ManualClock();
  const logs: LogEntry[] = [];
  const report = new DeviceReport(recordingLogger(logs), clock);
  const session = new Hl7Driver({ format, adapter: 'rs232' }).open(link, {
    deviceId: 'pump-1',
    sink,
    refusing: () => false,
    report,
    clock,
  });
  const acks = () => written.map((b) => parseMllpAck(b.toString('latin1')));
  return { session, written, events, report, logs, acks };
}

const message = (id: string) =>
  encodeMllp(
    oruR01Message({
      controlId: id,
      patient: { mrn: 'MRN-1', name: 'DOE^JO' },
      observations: pcd01VitalSigns({ systolic: 120, diastolic: 80, mean: 93, spo2: 97, pulse: 70 }),
    }),
  );

t.test('the sink decides the ACK: AA stored, AE malformed, AR refused (with its code)', async (t) => {
  const answers: (Error | undefined)[] = [
    undefined,
    new GatewayError('ATTACHE_MALFORMED', 'no mapping'),
    new GatewayError('ATTACHE_CACHE_FULL', 'full'),
  ];
  const { session, acks, report } = rig(async () => {
    const answer = answers.shift();
    if (answer) throw answer;
  });
  session.receive(Buffer.concat([message('A'), message('B'), message('C')]));
  await session.drained();
  t.same(
    acks().map((a) => [a.code, a.controlId]),
    [
      ['AA', 'A'],
      ['AE', 'B'],
      ['AR', 'C'],
    ],
  );
  t.match(report.counts, { frames: 3, stored: 1, malformed: 1, refused: 1 });
  t.match(report.lastError, { code: 'ATTACHE_CACHE_FULL' });
});

t.test('no ACK goes out while its write is in flight, however many turns pass', async (t) => {
  const writes: (() => void)[] = [];
  const failNext: (Error | undefined)[] = [undefined, new GatewayError('ATTACHE_CACHE_FULL', 'full')];
  const { session, acks, written } = rig(
    () =>
      new Promise<void>((resolve, reject) => {
        const err = failNext.shift();
        writes.push(() => (err ? reject(err) : resolve()));
      }),
  );
  session.receive(Buffer.concat([message('A'), message('B')]));
  // Turns of the event loop pass while both writes are in flight: nothing may be acknowledged yet.
  for (let turn = 0; turn < 3; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(written.length, 0, 'nothing is acknowledged before its write is done');
  for (const done of writes) done();
  await session.drained();
  t.same(
    acks().map((a) => [a.code, a.controlId]),
    [
      ['AA', 'A'],
      ['AR', 'B'],
    ],
    'the stored message gets its AA, the failed one its AR, in order',
  );
  const ackIds = written.map((b) => b.toString('latin1').split('\r')[0]?.split('|')[9]);
  t.equal(new Set(ackIds).size, 2, 'each ACK has its own control id');
});

t.test(
  'a sink that throws at once answers as one that rejects, in order behind the ACKs before it',
  async (t) => {
    let calls = 0;
    const { session, acks, report } = rig(() => {
      calls++;
      if (calls === 2) throw new GatewayError('ATTACHE_MALFORMED', 'no mapping');
      if (calls === 3) throw new Error('the cache is closing');
      return new Promise<void>((resolve) => setImmediate(resolve));
    });
    session.receive(Buffer.concat([message('A'), message('B'), message('C')]));
    await session.drained();
    t.same(
      acks().map((a) => [a.code, a.controlId]),
      [
        ['AA', 'A'],
        ['AE', 'B'],
        ['AR', 'C'],
      ],
      'the AE and AR wait for the AA before them',
    );
    t.match(report.counts, { frames: 3, stored: 1, malformed: 1, refused: 1 });
  },
);

t.test(`${maxPendingAcks} ACKs waiting pause the link; it resumes once they are written`, async (t) => {
  const releases: (() => void)[] = [];
  const { session, events, written } = rig(
    () =>
      new Promise<void>((resolve) => {
        releases.push(resolve);
      }),
  );
  for (let i = 0; i < maxPendingAcks; i++) session.receive(message(`M${i}`));
  t.same(events, ['pause']);
  for (const release of releases) release();
  await session.drained();
  t.same(events, ['pause', 'resume']);
  t.equal(written.length, maxPendingAcks);
});

t.test('junk is counted, an oversize frame closes the link after the ACKs before it', async (t) => {
  const { session, events, report, acks } = rig(async () => {}, hl7Format({ maxMessageBytes: 1024 }));
  session.receive(Buffer.from('noise'));
  session.receive(message('OK'));
  session.receive(Buffer.concat([Buffer.from([0x0b]), Buffer.alloc(2048, 0x41)]));
  session.receive(message('AFTER'));
  await session.drained();
  t.equal(report.junkBytes, 5);
  t.same(
    acks().map((a) => a.controlId),
    ['OK'],
    'nothing read after the oversize frame',
  );
  t.same(events, ['pause', 'close']);
  t.match(report.counts, { frames: 2, stored: 1, malformed: 1 });
  session.end();
  t.equal(report.junkBytes, 5, 'the cut-off frame is not junk');
});

t.test('junk left when the link ends is counted; an incoming ACK is not acknowledged', async (t) => {
  const { session, report, written, logs } = rig(async () => {});
  session.receive(encodeMllp('MSH|^~\\&|A|B|C|D|20260101||ACK^R01^ACK|X1|P|2.6\rMSA|AA|Q1'));
  await session.drained();
  t.equal(written.length, 0);
  t.ok(logs.some((e) => e.msg === 'message not acknowledged'));
  session.receive(Buffer.from('trailing'));
  session.end();
  t.ok(report.junkBytes > 0);
});
