import { createServer, type Socket } from 'node:net';
import { bindAddressFor, EthernetAdapter, parseAllowList } from '@attache/adapter-ethernet';
import { AstmReceiver, frameAstmRecords } from '@attache/astm';
import type { DeviceReading, ReadingSink } from '@attache/core';
import { getFreePort, liveBytes, MllpSenderSimulator, parseMllpAck } from '@attache/devkit';
import { encodeMllp } from '@attache/hl7';
import t, { type Test } from 'tap';
import {
  closed,
  connectTo,
  type Entry,
  ethernetDevice,
  recordingLogger,
  until,
  vitalSigns,
  withDriver,
} from './helpers.js';

function storing() {
  const readings: DeviceReading[] = [];
  const sink: ReadingSink = async (reading) => {
    readings.push(reading);
  };
  return { readings, sink };
}

async function listen(
  t: Test,
  endpoint: Record<string, unknown>,
  format: Record<string, unknown>,
  refusing = () => false,
) {
  const port = await getFreePort();
  const { readings, sink } = storing();
  const entries: Entry[] = [];
  const device = ethernetDevice({ endpoint: { mode: 'listen', port, ...endpoint }, format });
  const adapter = new EthernetAdapter({
    ...withDriver(device),
    sink,
    logger: recordingLogger(entries),
    refusing,
  });
  await adapter.start();
  t.teardown(() => adapter.stop());
  return { adapter, port, readings, entries };
}

const hl7 = { kind: 'hl7-mllp' };

t.test(
  'allow-list: addresses, CIDR ranges, IPv6, IPv4-mapped IPv6; bad entries are config errors',
  async (t) => {
    const list = parseAllowList(['10.1.2.0/24', '192.168.7.7', 'fd00::/8', '::ffff:172.16.0.1']);
    t.ok(list.allows('10.1.2.200'));
    t.ok(list.allows('::ffff:10.1.2.3'), 'IPv4-mapped peer');
    t.notOk(list.allows('10.1.3.1'));
    t.ok(list.allows('192.168.7.7'));
    t.ok(list.allows('fd12::1'));
    t.ok(list.allows('172.16.0.1'));
    t.notOk(list.allows(undefined));
    t.notOk(list.allows('not an address'));
    t.throws(() => parseAllowList(['10.0.0.0/33', 'localhost', '1.2.3.4/8/9', '10.0.0.1']), {
      code: 'ATTACHE_CONFIG_INVALID',
      issues: [{ path: '/endpoint/allow/0' }, { path: '/endpoint/allow/1' }, { path: '/endpoint/allow/2' }],
    });
  },
);

t.test(
  'without endpoint.host, a listener binds the interface of its allow-list, not every one',
  async (t) => {
    const { adapter, port, entries } = await listen(t, { allow: ['127.0.0.1'] }, hl7);
    const sender = new MllpSenderSimulator({ port, host: '127.0.0.1' });
    t.teardown(() => sender.close());
    t.equal((await sender.send(vitalSigns('B1'))).code, 'AA', 'the allowed peer is served');
    // 127.0.0.2 is another local address: an all-interfaces listener would accept (then close) it.
    await t.rejects(connectTo(port, '127.0.0.2'), { code: 'ECONNREFUSED' }, 'nothing listens elsewhere');
    t.equal(adapter.status().connectionsRefused, 0, 'refused by the kernel, not after accept');
    t.ok(entries.some((e) => e.msg === 'listening' && e.host === '127.0.0.1' && e.port === port));
  },
);

t.test('an allow-list no local interface holds: not listening, saying to set endpoint.host', async (t) => {
  const { adapter } = await listen(t, { allow: ['10.9.9.0/24'] }, hl7);
  t.match(adapter.status(), {
    state: 'disconnected',
    lastError: { code: 'ATTACHE_PORT_NOT_OPEN', message: /no local interface .* set endpoint.host/ },
  });
});

t.test('the bind address: the interface whose network holds every allow-list entry', async (t) => {
  const info = (address: string, cidr: string, family: 'IPv4' | 'IPv6') => ({
    address,
    cidr,
    family,
    netmask: '',
    mac: '00:00:00:00:00:00',
    internal: false,
    scopeid: 0,
  });
  const interfaces = {
    lo: [info('127.0.0.1', '127.0.0.1/8', 'IPv4'), info('::1', '::1/128', 'IPv6')],
    eth0: [info('192.168.10.4', '192.168.10.4/24', 'IPv4')],
    eth1: [info('10.1.2.1', '10.1.2.1/24', 'IPv4'), info('fd00:1::1', 'fd00:1::1/64', 'IPv6')],
  };
  t.equal(bindAddressFor(['10.1.2.7', '10.1.2.16/28'], interfaces), '10.1.2.1', 'the device-side port');
  t.equal(bindAddressFor(['127.0.0.1'], interfaces), '127.0.0.1');
  t.equal(bindAddressFor(['::1'], interfaces), '::1');
  t.equal(bindAddressFor(['fd00:1::20'], interfaces), 'fd00:1::1');
  t.equal(bindAddressFor(['::ffff:10.1.2.9'], interfaces), '10.1.2.1', 'IPv4-mapped entries');
  t.equal(bindAddressFor(['10.1.2.7', '192.168.10.9'], interfaces), undefined, 'two networks');
  t.equal(bindAddressFor(['10.0.0.0/8'], interfaces), undefined, 'wider than the interface');
  t.equal(bindAddressFor([], interfaces), undefined);
  t.equal(bindAddressFor(['nonsense'], interfaces), undefined);
  t.equal(
    bindAddressFor(['10.1.2.7'], { eth1: [{ ...info('10.1.2.1', '', 'IPv4'), cidr: null }] }),
    undefined,
  );
});

t.test('client mode: reconnect delays double and are spread by the jitter', async (t) => {
  const port = await getFreePort(); // nothing listens there
  const entries: Entry[] = [];
  const device = ethernetDevice({
    endpoint: { mode: 'connect', host: '127.0.0.1', port, reconnectMs: 100 },
    format: hl7,
  });
  const { sink } = storing();
  const adapter = new EthernetAdapter({
    ...withDriver(device),
    sink,
    logger: recordingLogger(entries),
    jitter: 0.5,
    random: () => 0.5,
  });
  await adapter.start();
  t.teardown(() => adapter.stop());
  const retries = () => entries.filter((e) => e.msg === 'endpoint unavailable, will retry');
  await until(() => retries().length >= 3, 'three retries');
  t.same(
    retries()
      .slice(0, 3)
      .map((e) => e.retryInMs),
    [75, 150, 300],
    '100, 200, 400 ms, each less 25 %',
  );
});

t.test('a peer not on the allow-list is closed at once, counted and logged', async (t) => {
  const { adapter, port, entries } = await listen(t, { host: '127.0.0.1', allow: ['10.9.9.0/24'] }, hl7);
  const socket = await connectTo(port);
  socket.on('error', () => {});
  socket.write(encodeMllp(vitalSigns('X1')));
  await closed(socket);
  t.match(adapter.status(), { connectionsRefused: 1, connectionsAccepted: 0, frames: 0 });
  t.ok(entries.some((e) => e.msg === 'connection refused' && e.remote === '127.0.0.1'));
});

t.test(
  'a listener on :: sees IPv4 peers as ::ffff:a.b.c.d and allows them by their IPv4 range',
  async (t) => {
    const { adapter, port } = await listen(t, { host: '::', allow: ['127.0.0.0/8'] }, hl7);
    const sender = new MllpSenderSimulator({ port, host: '127.0.0.1' });
    t.teardown(() => sender.close());
    t.equal((await sender.send(vitalSigns('M1'))).code, 'AA');
    t.equal(adapter.status().connectionsAccepted, 1);
  },
);

t.test('maxConnections: one more is refused; a half-open peer is closed by the idle timeout', async (t) => {
  // Without an idle timeout first: the two held connections stay however slowly the third comes.
  const full = await listen(
    t,
    { host: '127.0.0.1', allow: ['127.0.0.1'], maxConnections: 2, idleTimeoutSeconds: 0 },
    hl7,
  );
  const held = [await connectTo(full.port), await connectTo(full.port)];
  await until(() => full.adapter.status().connections === 2, 'two connections');
  const c = await connectTo(full.port);
  c.on('error', () => {});
  await closed(c);
  t.equal(full.adapter.status().connectionsRefused, 1, 'the third was refused');
  for (const socket of held) socket.destroy();

  const { adapter, port, entries } = await listen(
    t,
    { host: '127.0.0.1', allow: ['127.0.0.1'], maxConnections: 2, idleTimeoutSeconds: 1 },
    hl7,
  );
  const a = await connectTo(port);
  const b = await connectTo(port);
  // a and b never send anything: they stand for peers that vanished without a FIN.
  await Promise.all([closed(a), closed(b)]);
  await until(() => adapter.status().connections === 0, 'both closed on the gateway side');
  t.equal(adapter.status().idleClosed, 2);
  t.ok(entries.some((e) => e.msg === 'idle connection closed'));
});

t.test(
  'client mode: connects to the device, acknowledges, reconnects after the device drops it',
  async (t) => {
    const port = await getFreePort();
    const sockets: Socket[] = [];
    const device = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => device.listen(port, '127.0.0.1', resolve));
    t.teardown(() => new Promise((resolve) => device.close(resolve)));
    const { readings, sink } = storing();
    const config = ethernetDevice({
      endpoint: { mode: 'connect', host: '127.0.0.1', port, reconnectMs: 100 },
      format: hl7,
    });
    const adapter = new EthernetAdapter({ ...withDriver(config), sink });
    await adapter.start();
    t.teardown(() => adapter.stop());
    await until(() => sockets.length === 1, 'the gateway connected');
    const first = sockets[0] as Socket;
    const ack = new Promise<string>((resolve) => first.once('data', (d) => resolve(d.toString('latin1'))));
    first.write(encodeMllp(vitalSigns('CL1')));
    t.same(parseMllpAck(await ack), { code: 'AA', controlId: 'CL1' });
    first.destroy();
    await until(() => sockets.length === 2, 'the gateway reconnected');
    t.match(adapter.status(), { state: 'connected', connectionsAccepted: 2, stored: 1 });
    t.equal(readings[0]?.adapter, 'ethernet');
  },
);

t.test('client mode: an absent device is retried with back-off', async (t) => {
  const port = await getFreePort();
  const entries: Entry[] = [];
  const config = ethernetDevice({
    endpoint: { mode: 'connect', host: '127.0.0.1', port, reconnectMs: 100 },
    format: hl7,
  });
  const adapter = new EthernetAdapter({
    ...withDriver(config),
    sink: async () => {},
    logger: recordingLogger(entries),
  });
  await adapter.start();
  t.teardown(() => adapter.stop());
  await until(
    () => entries.filter((e) => e.msg === 'endpoint unavailable, will retry').length >= 2,
    'two retries',
  );
  const delays = entries.filter((e) => e.msg === 'endpoint unavailable, will retry').map((e) => e.retryInMs);
  t.same(delays.slice(0, 2), [100, 200], 'the delay doubles');
  t.match(adapter.status(), { state: 'disconnected', lastError: { code: 'ATTACHE_PORT_NOT_OPEN' } });
});

t.test('a port already in use: the listener retries instead of crashing', async (t) => {
  const port = await getFreePort();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  const { adapter } = await listenOn(t, port);
  t.equal(adapter.status().state, 'disconnected');
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
  await until(() => adapter.status().state === 'connected', 'listening after the port was freed');
  t.pass('listening');
});

async function listenOn(t: Test, port: number) {
  const device = ethernetDevice({
    endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'], reconnectMs: 100 },
    format: hl7,
  });
  const adapter = new EthernetAdapter({ ...withDriver(device), sink: async () => {} });
  await adapter.start();
  t.teardown(() => adapter.stop());
  return { adapter };
}

/**
 * An analyzer's end of an ASTM connection: `send(bytes)` resolves with the byte the gateway answers,
 * `write(bytes)` expects no answer.
 */
async function astmPeer(t: Test, port: number) {
  const socket = await connectTo(port);
  t.teardown(() => socket.destroy());
  const replies: number[] = [];
  socket.on('data', (d: Buffer) => replies.push(...d));
  const write = (bytes: Buffer | number[]) => socket.write(Buffer.from(bytes));
  const send = async (bytes: Buffer | number[]) => {
    const count = replies.length;
    write(bytes);
    await until(() => replies.length > count, 'a reply');
    return replies.at(-1);
  };
  return { send, write };
}

t.test(
  'ASTM over TCP: while the cache refuses, ENQ is answered busy; accepted once it has room',
  async (t) => {
    let full = true;
    const { port, readings, entries } = await listen(
      t,
      { host: '127.0.0.1', allow: ['127.0.0.1'] },
      { kind: 'astm' },
      () => full,
    );
    const { send } = await astmPeer(t, port);
    const enq = () => send([0x05]);
    t.equal(await enq(), 0x15, 'NAK: busy');
    t.equal(await enq(), 0x15, 'still busy');
    t.equal(
      entries.filter((e) => e.level === 'warn' && String(e.msg).startsWith('ASTM ENQ answered busy')).length,
      1,
      'warned once, then at debug',
    );
    full = false;
    t.equal(await enq(), 0x06, 'ACK once the cache has room');
    t.ok(entries.some((e) => e.msg === 'ASTM transfers accepted again'));
    t.equal(readings.length, 0);
  },
);

t.test('ASTM over TCP: the same receiver; the final frame is ACKed once stored', async (t) => {
  const { adapter, port, readings } = await listen(
    t,
    { host: '127.0.0.1', allow: ['127.0.0.1'] },
    { kind: 'astm' },
  );
  const { send, write } = await astmPeer(t, port);
  t.equal(await send([0x05]), 0x06, 'ENQ answered with ACK');
  const records = [
    'H|\\^&|||XN-550^00-22^1.0|||||||P|LIS2-A2|20260124101500',
    'P|1||PAT-77812||DOE^JOHN||19600101|M',
    'O|1|SPEC-1234||^^^WBC',
    'R|1|^^^WBC|7.2|10*3/uL|4.0-10.0|N||F||||20260124101000',
    'L|1|N',
  ];
  for (const frame of frameAstmRecords(records)) t.equal(await send(frame), 0x06);
  write([0x04]);
  t.equal(readings.length, 1);
  const r = readings[0];
  t.match(r, {
    protocol: 'astm',
    patientId: 'PAT-77812',
    specimenId: 'SPEC-1234',
    instrument: { name: 'XN-550', serial: '00-22', version: '1.0' },
    deviceTime: '2026-01-24T10:15:00',
  });
  t.same(
    r?.observations?.map((o) => [o.code, o.value, o.unit, o.status]),
    [['WBC', 7.2, '10*3/uL', 'valid']],
  );
  t.notMatch(r?.raw.toString('latin1'), 'DOE', 'raw is the H record only');
  t.equal(adapter.status().stored, 1);
});

t.test(
  'ASTM over TCP: 20 MiB sent while a message waits for the store are not held (64 KiB at most)',
  async (t) => {
    const port = await getFreePort();
    let release = () => {};
    const stored = new Promise<void>((resolve) => {
      release = resolve;
    });
    const device = ethernetDevice({
      endpoint: { mode: 'listen', port, host: '127.0.0.1', allow: ['127.0.0.1'] },
      format: { kind: 'astm', maxMessageBytes: 16 * 1024 * 1024 },
    });
    const adapter = new EthernetAdapter({ ...withDriver(device), sink: () => stored });
    await adapter.start();
    t.teardown(() => adapter.stop());
    const socket = await connectTo(port);
    t.teardown(() => socket.destroy());
    const replies: number[] = [];
    socket.on('data', (d: Buffer) => replies.push(...d));
    const send = async (bytes: Buffer) => {
      const count = replies.length;
      socket.write(bytes);
      await until(() => replies.length > count, 'a reply');
      return replies.at(-1);
    };
    t.equal(await send(Buffer.from([0x05])), 0x06);
    const frames = frameAstmRecords([
      'H|\\^&|||XN-550',
      'P|1',
      'O|1|S-1||^^^WBC',
      'R|1|^^^WBC|7.2|10*3/uL',
      'L|1|N',
    ]);
    for (const frame of frames.slice(0, -1)) t.equal(await send(frame), 0x06);
    socket.write(frames.at(-1) as Buffer);
    await until(() => adapter.status().frames === 1, 'the message waits for the store');
    const before = liveBytes();
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 320; i++) {
      // Wait for each chunk to leave this process: only the gateway's side is measured.
      await new Promise((resolve) => socket.write(chunk, resolve));
    }
    await until(() => adapter.status().malformed > 0, 'the bytes past 64 KiB are discarded');
    const growth = liveBytes() - before;
    t.ok(growth < 8 * 1024 * 1024, `live memory grew by ${(growth / 2 ** 20).toFixed(1)} MiB`);
    t.match(adapter.status(), { lastError: { code: 'ATTACHE_MALFORMED' } });
    const answered = replies.length;
    release();
    await until(() => replies.length > answered, 'the final frame answered');
    t.equal(replies[answered], 0x06, 'ACKed once stored');
    t.match(adapter.status(), { stored: 1 });
  },
);

t.test(
  'ASTM over TCP: a host query is stored as an event and answered "no information" after EOT',
  async (t) => {
    const { port, readings } = await listen(t, { host: '127.0.0.1', allow: ['127.0.0.1'] }, { kind: 'astm' });
    const socket = await connectTo(port);
    t.teardown(() => socket.destroy());
    const received: number[] = [];
    socket.on('data', (d: Buffer) => received.push(...d));
    let read = 0;
    const next = async () => {
      await until(() => received.length > read, 'a byte from the gateway');
      return received[read++];
    };
    socket.write(Buffer.from([0x05]));
    t.equal(await next(), 0x06, 'ENQ answered with ACK');
    const query = [
      'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20260124135000',
      'Q|1|^^SMP0001||^^^ALL||||||||O',
      'L|1|N',
    ];
    for (const frame of frameAstmRecords(query)) {
      socket.write(frame);
      t.equal(await next(), 0x06);
    }
    socket.write(Buffer.from([0x04]));
    t.match(readings[0], { event: { type: 'astm.query' }, specimenId: 'SMP0001', observations: [] });
    t.equal(await next(), 0x05, 'after our EOT the gateway asks for the line');
    // Play the receiving instrument: ACK the ENQ and every frame, collect the records.
    const receiver = new AstmReceiver();
    const actions = receiver.feed(Buffer.from([0x05]));
    socket.write(Buffer.concat(actions.flatMap((a) => (a.type === 'send' ? [a.bytes] : []))));
    let records: string[] | undefined;
    while (records === undefined) {
      const byte = await next();
      for (const action of receiver.feed(Buffer.from([byte as number]))) {
        if (action.type === 'send') socket.write(action.bytes);
        if (action.type === 'message') {
          records = action.records;
          if (action.awaitingStore) {
            for (const a of receiver.acknowledge(true)) if (a.type === 'send') socket.write(a.bytes);
          }
        }
      }
    }
    t.match(records[0], /^H\|/);
    t.equal(records[1], 'L|1|I', 'the LIS2-A2 answer of a host that holds no orders');
  },
);

t.test(
  'kv-line and regex-line over TCP; a bad line is malformed, a blank one skipped, the next one is read',
  async (t) => {
    const kv = await listen(
      t,
      { host: '127.0.0.1', allow: ['127.0.0.1'] },
      {
        kind: 'kv-line',
        timestamp: 'HH:mm:ss',
        fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', unit: '%' } },
      },
    );
    const a = await connectTo(kv.port);
    t.teardown(() => a.destroy());
    // Blank lines between readings (CR LF CR LF, spaces) are skipped: neither frames nor malformed.
    a.write('12:00:01 SPO2=097 HR=072*\r\n\r\n \t \r\n\x01\x02junk\r\n12:00:02 SPO2=--- HR=---\n');
    await until(() => kv.readings.length === 2, 'two lines');
    t.same(kv.readings[0]?.fields, [
      { name: 'SPO2', value: '097' },
      { name: 'HR', value: '072' },
    ]);
    t.same(kv.readings[0]?.markers, ['*']);
    t.equal(kv.readings[0]?.deviceTime, '12:00:01');
    t.match(kv.adapter.status(), { frames: 3, malformed: 1 });

    const rx = await listen(
      t,
      { host: '127.0.0.1', allow: ['127.0.0.1'] },
      {
        kind: 'regex-line',
        pattern: '^(?<time>\\d{2}/\\d{2}/\\d{2} \\d{2}:\\d{2}:\\d{2}) SpO2=(?<spo2>\\d+|-+)$',
        timestamp: 'MM/DD/YY HH:mm:ss',
        fields: { spo2: { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', unit: '%' } },
      },
    );
    const b = await connectTo(rx.port);
    t.teardown(() => b.destroy());
    b.write(`01/24/26 12:00:00 SpO2=96\r\nnope\r\n${'x'.repeat(9000)}\r\n01/24/26 12:00:01 SpO2=95\r\n`);
    await until(() => rx.readings.length === 2, 'two matching lines');
    t.same(
      rx.readings.map((r) => [r.protocol, r.deviceTime, r.fields]),
      [
        ['regex-line', '2026-01-24T12:00:00', [{ name: 'spo2', value: '96' }]],
        ['regex-line', '2026-01-24T12:00:01', [{ name: 'spo2', value: '95' }]],
      ],
    );
    t.match(rx.adapter.status(), { malformed: 2 });
    t.throws(
      () =>
        withDriver(
          ethernetDevice({
            endpoint: { mode: 'connect', host: '127.0.0.1', port: 1 },
            format: { kind: 'regex-line', pattern: '(unclosed', fields: { a: { code: 'X' } } },
          }),
        ),
      { code: 'ATTACHE_CONFIG_INVALID' },
    );
  },
);
