import { AstmDriver, astmMaxHeldBytes, frameAstmRecords } from '@attache/astm';
import {
  type ByteLink,
  type DeviceReading,
  DeviceReport,
  GatewayError,
  ManualClock,
  type ReadingSink,
  validateConfig,
} from '@attache/core';
import { type LogEntry, recordingLogger } from '@attache/devkit';
import t from 'tap';

const ENQ = Buffer.from([0x05]);
const EOT = Buffer.from([0x04]);
const ACK = 0x06;
const NAK = 0x15;

const records = [
  'H|\\^&|||XN-550^00-22^1.0|||||||P|LIS2-A2|20260124101500',
  'P|1||PAT-77812',
  'O|1|SPEC-1234||^^^WBC',
  'R|1|^^^WBC|7.2|10*3/uL|4.0-10.0|N||F||||20260124101000',
  'L|1|N',
];

function astmFormat(extra: Record<string, unknown> = {}) {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      {
        id: 'xn-1',
        adapter: 'ethernet',
        endpoint: { mode: 'connect', host: '127.0.0.1', port: 1 },
        format: { kind: 'astm', ...extra },
      },
    ],
  });
  const device = config.devices[0];
  if (device?.adapter !== 'ethernet' || device.format.kind !== 'astm') throw new Error('not astm');
  return device.format;
}

/** The analyzer's end of a link held in memory: what the session wrote, and whether it paused. */
function rig(sink: ReadingSink, format = astmFormat()) {
  const written: number[] = [];
  const link: ByteLink = {
    name: 'memory',
    open: true,
    write: (bytes) => {
      written.push(...bytes);
      return true;
    },
    pause: () => {},
    resume: () => {},
    close: () => {},
  };
  const clock = new ManualClock();
  const logs: LogEntry[] = [];
  const report = new DeviceReport(recordingLogger(logs), clock);
  const driver = new AstmDriver({ format, adapter: 'rs232' });
  const session = driver.open(link, { deviceId: 'xn-1', sink, refusing: () => false, report, clock });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { written, clock, logs, report, session, driver, settle };
}

/** ENQ and every frame but the last of `records`; returns the last frame. */
function transfer(session: { receive(chunk: Buffer): void }, all = records): Buffer {
  const frames = frameAstmRecords(all);
  session.receive(ENQ);
  for (const frame of frames.slice(0, -1)) session.receive(frame);
  return frames.at(-1) as Buffer;
}

t.test('the last frame is ACKed only once the sink resolved; frames counts messages', async (t) => {
  let release = () => {};
  const readings: DeviceReading[] = [];
  const { written, session, report, settle } = rig(async (reading) => {
    readings.push(reading);
    await new Promise<void>((resolve) => {
      release = resolve;
    });
  });
  const last = transfer(session);
  t.same(written, [ACK, ACK, ACK, ACK, ACK], 'ENQ and four frames ACKed');
  session.receive(last);
  await settle();
  t.equal(written.length, 5, 'the last frame waits for the store');
  t.equal(readings.length, 1);
  release();
  await session.drained();
  t.equal(written.at(-1), ACK, 'ACKed once stored');
  t.match(readings[0], { adapter: 'rs232', deviceId: 'xn-1', idempotencyKey: /^astm:[0-9a-f]{64}:0$/ });
  t.match(report.counts, { frames: 1, stored: 1, malformed: 0, refused: 0 });
});

t.test('bytes while a message is stored: held up to 64 KiB, then discarded and counted', async (t) => {
  let release = () => {};
  const { written, session, report, logs, settle } = rig(
    () =>
      new Promise<void>((resolve) => {
        release = resolve;
      }),
  );
  session.receive(transfer(session));
  session.receive(EOT);
  session.receive(Buffer.alloc(astmMaxHeldBytes, 0x41));
  t.match(report.counts, { malformed: 1 }, 'past 64 KiB: discarded');
  t.match(report.lastError, { code: 'ATTACHE_MALFORMED' });
  t.ok(logs.some((e) => e.msg === 'ASTM bytes discarded' && e.bytes === astmMaxHeldBytes));
  await settle();
  release();
  await session.drained();
  t.equal(written.at(-1), ACK, 'the message is ACKed');
  session.receive(ENQ);
  t.equal(written.at(-1), ACK, 'the held EOT ended the transfer: a new ENQ is accepted');
});

t.test('a refused or malformed message is NAKed and counted by its code', async (t) => {
  const refusing = rig(async () => {
    throw new GatewayError('ATTACHE_CACHE_FULL', 'full');
  });
  refusing.session.receive(transfer(refusing.session));
  await refusing.session.drained();
  t.equal(refusing.written.at(-1), NAK);
  t.match(refusing.report.counts, { refused: 1, stored: 0 });
  t.match(refusing.report.lastError, { code: 'ATTACHE_CACHE_FULL' });
  const unknown = rig(async () => {
    throw new Error('boom');
  });
  unknown.session.receive(transfer(unknown.session));
  await unknown.session.drained();
  t.match(unknown.report.lastError, { code: 'ATTACHE_INTERNAL' }, 'never a bare ERROR');
  const malformed = rig(async () => {
    throw new GatewayError('ATTACHE_MALFORMED', 'no mapping');
  });
  malformed.session.receive(transfer(malformed.session));
  await malformed.session.drained();
  t.equal(malformed.written.at(-1), NAK);
  t.match(malformed.report.counts, { malformed: 1, refused: 0 });
});

t.test(
  'an analyzer that gives up after a refused store sends the message again: stored once, whole',
  async (t) => {
    let full = true;
    const readings: DeviceReading[] = [];
    const { session, written, logs } = rig(async (reading) => {
      if (full) throw new GatewayError('ATTACHE_CACHE_FULL', 'full');
      readings.push(reading);
    });
    const last = transfer(session);
    for (let attempt = 0; attempt < 6; attempt++) {
      session.receive(last);
      await session.drained();
    }
    t.equal(written.at(-1), NAK, 'the final frame refused six times');
    session.receive(EOT);
    await session.drained();
    t.same(readings, [], 'the part ACKed before the final frame is not stored on its own');
    t.ok(logs.some((e) => String(e.msg).startsWith('ASTM transfer ended right after a refused frame')));
    full = false;
    session.receive(transfer(session));
    session.receive(EOT);
    await session.drained();
    t.equal(readings.length, 1, 'the message sent again is stored once');
    t.equal(readings[0]?.observations?.length, 1, 'with its result');
  },
);

t.test('one timer on the clock: the receiver timer fires without waiting, end() cancels it', async (t) => {
  const { session, clock, logs } = rig(async () => {});
  t.equal(clock.pending, 1, 'one timer per session');
  transfer(session);
  await clock.advance(29_000);
  t.notOk(logs.some((e) => String(e.msg).startsWith('ASTM transfer timed out')));
  await clock.advance(1_250);
  t.ok(
    logs.some((e) => String(e.msg).startsWith('ASTM transfer timed out')),
    'E1381 receiver timer: 30 s',
  );
  t.equal(clock.pending, 1, 'still one timer');
  session.end();
  t.equal(clock.pending, 0, 'no timer left after end()');
});

t.test('a frame re-sent after a lost ACK is ACKed again and logged, stored once', async (t) => {
  const readings: DeviceReading[] = [];
  const { session, written, logs } = rig(async (reading) => {
    readings.push(reading);
  });
  const frames = frameAstmRecords(records);
  session.receive(ENQ);
  session.receive(frames[0] as Buffer);
  session.receive(frames[0] as Buffer);
  t.same(written, [ACK, ACK, ACK]);
  t.ok(logs.some((e) => String(e.msg).startsWith('ASTM frame re-sent after a lost ACK')));
  for (const frame of frames.slice(1)) session.receive(frame);
  await session.drained();
  t.equal(readings.length, 1);
});

t.test('a transfer cut off by the link closing is logged; nothing is written afterwards', async (t) => {
  const { session, logs, written, driver } = rig(async () => {});
  const last = transfer(session);
  session.end();
  t.ok(logs.some((e) => String(e.msg).startsWith('ASTM transfer cut off')));
  const count = written.length;
  session.receive(last);
  t.equal(written.length, count);
  await driver.close();
});

t.test('a host query is answered "no information" after the instrument EOT, on the clock', async (t) => {
  const { session, written, clock } = rig(async () => {}, astmFormat({ hostQueries: 'no-information' }));
  const query = [
    'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20260124135000',
    'Q|1|^^SMP0001||^^^ALL||||||||O',
    'L|1|N',
  ];
  session.receive(transfer(session, query));
  await session.drained();
  session.receive(EOT);
  await clock.advance(250);
  t.equal(written.at(-1), 0x05, 'the gateway asks for the line to answer');
  session.end();
});

t.test(
  'a bad frame is NAKed and counted; a message without L is stored at EOT; one that does not parse is NAKed',
  async (t) => {
    const readings: DeviceReading[] = [];
    const { session, written, report } = rig(async (reading) => {
      readings.push(reading);
    });
    session.receive(ENQ);
    const good = frameAstmRecords(records)[0] as Buffer;
    const bad = Buffer.from(good);
    bad[bad.length - 4] = bad[bad.length - 4] === 0x30 ? 0x31 : 0x30; // a wrong checksum digit
    session.receive(bad);
    t.equal(written.at(-1), NAK, 'checksum mismatch: NAK');
    t.match(report.counts, { malformed: 1 });
    // Frames ACKed one by one, no L record: stored at EOT, nothing left to refuse.
    for (const frame of frameAstmRecords(records.slice(0, -1))) session.receive(frame);
    session.receive(EOT);
    await session.drained();
    t.equal(readings.length, 1, 'stored at EOT');
    // A message whose first record is not H: parsed, refused, NAKed.
    const last = transfer(session, ['P|1||PAT-1', 'L|1|N']);
    session.receive(last);
    await session.drained();
    t.equal(written.at(-1), NAK);
    t.match(report.counts, { malformed: 2, frames: 2 });
  },
);

t.test(
  "a message with several patients goes to the sink's all(): ACKed when all are stored, NAKed otherwise",
  async (t) => {
    const batch = [
      'H|\\^&|||XN-550^00-22^1.0|||||||P|LIS2-A2|20260124101500',
      'P|1||PAT-1',
      'O|1|SPEC-1||^^^WBC',
      'R|1|^^^WBC|7.2|10*3/uL',
      'P|2||PAT-2',
      'O|1|SPEC-2||^^^WBC',
      'R|1|^^^WBC|5.1|10*3/uL',
      'L|1|N',
    ];
    const calls: DeviceReading[][] = [];
    const answers: (Error | undefined)[] = [new GatewayError('ATTACHE_CACHE_FULL', 'full'), undefined];
    const sink: ReadingSink = Object.assign(
      async () => {
        t.fail('not one by one');
      },
      {
        all: async (readings: DeviceReading[]) => {
          calls.push(readings);
          const answer = answers.shift();
          if (answer) throw answer;
        },
      },
    );
    const { session, written, report } = rig(sink);
    const last = transfer(session, batch);
    session.receive(last);
    await session.drained();
    t.equal(written.at(-1), NAK, 'refused: the analyzer keeps the whole message');
    session.receive(last);
    await session.drained();
    t.equal(written.at(-1), ACK, 'sent again and stored: ACKed');
    t.same(
      calls.map((c) => c.map((r) => [r.patientId, r.idempotencyKey?.slice(-2)])),
      [
        [
          ['PAT-1', ':0'],
          ['PAT-2', ':1'],
        ],
        [
          ['PAT-1', ':0'],
          ['PAT-2', ':1'],
        ],
      ],
      'one call per message, the same keys when it is sent again',
    );
    t.match(report.counts, { frames: 2, stored: 2, refused: 2, malformed: 0 });
    const malformed = rig(
      Object.assign(async () => {}, {
        all: async () => {
          throw new GatewayError('ATTACHE_MALFORMED', 'no mapping');
        },
      }),
    );
    malformed.session.receive(transfer(malformed.session, batch));
    await malformed.session.drained();
    t.equal(malformed.written.at(-1), NAK);
    t.match(malformed.report.counts, { malformed: 1, refused: 0, stored: 0 });
  },
);
