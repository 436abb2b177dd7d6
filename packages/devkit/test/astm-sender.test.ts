import { join } from 'node:path';
import { type AstmAction, AstmReceiver, parseAstmMessage } from '@attache/astm';
import { type AstmSenderOptions, AstmSenderSimulator, cbcMessage, openPtyPair } from '@attache/devkit';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';

interface Gateway {
  /** Messages committed: ACKed after the store, or ended by EOT. */
  messages: string[];
  /** Every byte the sender wrote, in order. */
  bytes: () => Buffer;
}

/**
 * The gateway end: a serialport fed into the real AstmReceiver, its answers written back. `stores`
 * answers successive held messages (default true); `silent` never answers.
 */
async function gateway(
  t: Test,
  path: string,
  options: { stores?: boolean[]; silent?: boolean; hold?: boolean; busy?: number } = {},
) {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
  let busy = options.busy ?? 0;
  const receiver = new AstmReceiver({ canAccept: () => busy-- <= 0 });
  const stores = [...(options.stores ?? [])];
  const chunks: Buffer[] = [];
  const result: Gateway = { messages: [], bytes: () => Buffer.concat(chunks) };
  const run = (actions: AstmAction[]): void => {
    for (const action of actions) {
      if (action.type === 'send') port.write(action.bytes);
      else if (action.type === 'message' && !action.awaitingStore) result.messages.push(action.text);
      else if (action.type === 'message' && !options.hold) {
        const stored = stores.shift() ?? true;
        setTimeout(() => {
          if (stored) result.messages.push(action.text);
          run(receiver.acknowledge(stored));
        }, 20);
      }
    }
  };
  port.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    if (!options.silent) run(receiver.feed(chunk));
  });
  return result;
}

async function setup(
  t: Test,
  options: Partial<AstmSenderOptions> = {},
  gw: Parameters<typeof gateway>[2] = {},
) {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const gatewaySide = await gateway(t, pty.gatewayPath, gw);
  // Answers come at once; a busy machine may still take seconds. Tests of timeouts set their own.
  const sender = new AstmSenderSimulator({ path: pty.devicePath, ackTimeoutMs: 10_000, ...options });
  await sender.open();
  t.teardown(() => sender.close());
  return { sender, gateway: gatewaySide };
}

/** Waits (up to 30 s) until the gateway saw the final EOT. */
async function settled(gw: Gateway): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (gw.bytes().at(-1) !== 0x04 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

t.test('a 25-result CBC arrives complete and parses, every result once', async (t) => {
  const { sender, gateway: gw } = await setup(t);
  const records = cbcMessage({ count: 25 });
  const result = await sender.send(records);
  await settled(gw);
  t.same(result, { status: 'sent', frames: records.length, naks: 0, retries: 0 });
  t.equal(gw.messages.length, 1, 'one message');
  const message = parseAstmMessage(gw.messages[0] ?? '');
  t.equal(message.results.length, 25);
  const codes = message.results.map((r) => r.testId.code);
  t.equal(new Set(codes).size, 25, 'every test once');
  t.same(codes.slice(0, 3), ['WBC', 'RBC', 'HGB']);
  t.same(message.results[0]?.units, '10*3/uL');
  t.ok(
    message.results.some((r) => r.abnormalFlags[0] === 'H') &&
      message.results.some((r) => r.abnormalFlags[0] === 'L'),
  );
  t.equal(message.patients[0]?.patientId, 'SIM-000123');
  t.equal(message.terminator?.code, 'N');
  t.same(
    Buffer.concat(sender.received),
    Buffer.alloc(records.length + 1, 0x06),
    'ACK for the ENQ and each frame',
  );
});

t.test('a record longer than 240 characters spans ETB frames and is joined', async (t) => {
  const { sender, gateway: gw } = await setup(t);
  const comment = `C|1|I|${'x'.repeat(600)}|G`;
  const records = ['H|\\^&|||XN-550', 'P|1||SIM-1', comment, 'L|1|N'];
  const result = await sender.send(records);
  await settled(gw);
  t.equal(result.status, 'sent');
  t.equal(result.frames, 6, '601+ characters take three frames');
  const wire = gw.bytes().toString('latin1');
  t.equal(wire.split('\x17').length - 1, 2, 'two ETB frames');
  t.ok(wire.startsWith('\x05\x021H|'), 'ENQ, then FN starts at 1');
  t.equal(gw.messages[0], records.map((r) => `${r}\r`).join(''), 'the record joined whole');
});

t.test('FN runs 1..7 then 0', async (t) => {
  const { sender, gateway: gw } = await setup(t);
  const result = await sender.send(cbcMessage({ count: 6 }));
  await settled(gw);
  t.equal(result.frames, 10);
  const fns = gw
    .bytes()
    .toString('latin1')
    .split('\x02')
    .slice(1)
    .map((f) => f[0])
    .join('');
  t.equal(fns, '1234567012');
  t.equal(parseAstmMessage(gw.messages[0] ?? '').results.length, 6);
});

t.test('a corrupted checksum is NAKed, the frame sent again, the message arrives once', async (t) => {
  const { sender, gateway: gw } = await setup(t, { faults: { corruptFrame: 2 } });
  const result = await sender.send(cbcMessage({ count: 3 }));
  await settled(gw);
  t.same(result, { status: 'sent', frames: 7, naks: 1, retries: 1 });
  t.equal(Buffer.concat(sender.received)[2], 0x15, 'NAK for frame 2');
  t.equal(gw.messages.length, 1);
  t.equal(parseAstmMessage(gw.messages[0] ?? '').results.length, 3);
});

t.test('LF-only trailers and ETB on every frame are accepted', async (t) => {
  for (const faults of [{ lfOnly: true }, { etbEveryFrame: true }, { lfOnly: true, corruptFrame: 1 }]) {
    const { sender, gateway: gw } = await setup(t, { faults });
    const result = await sender.send(cbcMessage({ count: 4 }));
    await settled(gw);
    t.equal(result.status, 'sent', JSON.stringify(faults));
    t.equal(parseAstmMessage(gw.messages[0] ?? '').results.length, 4);
  }
});

t.test('frameTextLength splits text into short frames', async (t) => {
  const { sender, gateway: gw } = await setup(t, { faults: { frameTextLength: 10 } });
  const records = cbcMessage({ count: 2 });
  const result = await sender.send(records);
  await settled(gw);
  t.ok(result.frames > 10);
  t.equal(gw.messages[0], records.map((r) => `${r}\r`).join(''));
});

t.test('a store failure NAKs the final frame: it is sent again and then succeeds', async (t) => {
  const { sender, gateway: gw } = await setup(t, {}, { stores: [false, true] });
  const result = await sender.send(cbcMessage({ count: 2 }));
  await settled(gw);
  t.same(result, { status: 'sent', frames: 6, naks: 1, retries: 1 });
  t.equal(gw.messages.length, 1, 'stored once');
});

t.test('a gateway that keeps failing the store gets EOT after maxRetries: refused', async (t) => {
  const { sender, gateway: gw } = await setup(t, { maxRetries: 2 }, { stores: [false, false, false] });
  const result = await sender.send(cbcMessage({ count: 1 }));
  await settled(gw);
  t.same(result, { status: 'refused', frames: 4, naks: 3, retries: 2 });
  t.equal(gw.bytes().at(-1), 0x04, 'EOT sent');
  // The receiver hands over the ACKed frames as a message without L; the held final frame never.
  t.notOk(
    gw.messages.some((m) => m.includes('L|1|N')),
    'the refused final frame is never stored',
  );
});

t.test('a receiver that never answers: timeout and EOT', async (t) => {
  const { sender, gateway: gw } = await setup(t, { ackTimeoutMs: 300 }, { silent: true });
  const result = await sender.send(cbcMessage({ count: 1 }));
  await settled(gw);
  t.same(result, { status: 'timeout', frames: 0, naks: 0, retries: 0 });
  t.same(gw.bytes(), Buffer.from([0x05, 0x04]), 'ENQ then EOT');
  t.same(sender.received, []);
});

t.test('a busy gateway (NAK to ENQ) gets ENQ again after busyRetryMs', async (t) => {
  const { sender, gateway: gw } = await setup(t, { busyRetryMs: 20 }, { busy: 2 });
  const result = await sender.send(['H|\\^&', 'L|1|N']);
  await settled(gw);
  t.same(result, { status: 'sent', frames: 2, naks: 2, retries: 2 });
  t.equal(Buffer.concat(sender.received).toString('hex'), '1515060606');
  t.equal(gw.messages.length, 1);
});

t.test('a gateway busy for longer than maxRetries ENQs: refused', async (t) => {
  const { sender, gateway: gw } = await setup(t, { busyRetryMs: 0, maxRetries: 1 }, { busy: 5 });
  const result = await sender.send(['H|\\^&', 'L|1|N']);
  await settled(gw);
  t.same(result, { status: 'refused', frames: 0, naks: 2, retries: 1 });
  t.same(gw.bytes(), Buffer.from([0x05, 0x05, 0x04]), 'ENQ, ENQ, EOT');
});

t.test('a gateway that never answers the final frame: timeout and EOT', async (t) => {
  // The frames before the last are ACKed at once: 3 s leaves a busy machine time for those.
  const { sender, gateway: gw } = await setup(t, { ackTimeoutMs: 3000 }, { hold: true });
  const result = await sender.send(cbcMessage({ count: 1 }));
  await settled(gw);
  t.same(result, { status: 'timeout', frames: 4, naks: 0, retries: 0 });
  t.equal(gw.bytes().at(-1), 0x04, 'EOT sent');
});

t.test('custom delimiters in H are used throughout and escaped in values', async (t) => {
  const { sender, gateway: gw } = await setup(t);
  const records = cbcMessage({ count: 28, delimiters: '!@#$' });
  t.match(records[0], /^H!@#\$!!!XN-550#00-24#22723/);
  t.ok(
    records.some((r) => r.includes('NEUT$S$')),
    '# in NEUT# is escaped as a component delimiter',
  );
  const result = await sender.send(records);
  await settled(gw);
  t.equal(result.status, 'sent');
  const message = parseAstmMessage(gw.messages[0] ?? '');
  t.same(message.header.delimiters, { field: '!', repeat: '@', component: '#', escape: '$' });
  t.equal(message.results.length, 28);
  t.ok(message.results.some((r) => r.testId.code === 'NEUT#'));
});

t.test('cbcMessage beyond 28 tests, and argument checks', async (t) => {
  const codes = cbcMessage({ count: 30 })
    .filter((r) => r.startsWith('R|'))
    .map((r) => r.split('|')[2]);
  t.same(codes.slice(28), ['^^^WBC-2', '^^^RBC-2']);
  t.equal(cbcMessage().filter((r) => r.startsWith('R|')).length, 25);
  t.throws(() => cbcMessage({ delimiters: '|||&' }), TypeError);
  t.throws(() => cbcMessage({ delimiters: '|a^&' }), TypeError);
  t.throws(() => cbcMessage({ count: -1 }), TypeError);
  t.throws(() => new AstmSenderSimulator({ path: '/x', ackTimeoutMs: 0 }), TypeError);
  t.throws(() => new AstmSenderSimulator({ path: '/x', maxRetries: 1.5 }), TypeError);
  t.throws(() => new AstmSenderSimulator({ path: '/x', faults: { frameTextLength: 0 } }), TypeError);
  const sender = new AstmSenderSimulator({ path: '/x' });
  await t.rejects(sender.send(['H|\\^&']), { code: 'ATTACHE_PORT_NOT_OPEN' });
  await t.rejects(sender.send([]), TypeError);
  await t.rejects(sender.send(['H|\\^&\x02']), TypeError);
  await t.rejects(sender.open());
});

t.test('close() during a send rejects it with ATTACHE_CANCELED', async (t) => {
  const { sender, gateway: gw } = await setup(t, { ackTimeoutMs: 30_000 }, { silent: true });
  const sending = sender.send(['H|\\^&', 'L|1|N']);
  await t.rejects(sender.send(['H|\\^&']), TypeError, 'one send at a time');
  // The ENQ is out: the send waits for its answer.
  const deadline = Date.now() + 30_000;
  while (gw.bytes().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const canceled = t.rejects(sending, { code: 'ATTACHE_CANCELED' });
  await sender.close();
  await canceled;
});

t.test('EOT in answer to a frame (receiver interrupt) counts as an ACK', async (t) => {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const port = new SerialPort({ path: pty.gatewayPath, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => port.close(() => resolve())));
  // ACK the ENQ, EOT after each frame (its last byte is LF).
  port.on('data', (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 0x05 || byte === 0x0a) port.write([byte === 0x05 ? 0x06 : 0x04]);
  });
  const sender = new AstmSenderSimulator({ path: pty.devicePath, ackTimeoutMs: 10_000 });
  await sender.open();
  t.teardown(() => sender.close());
  const result = await sender.send(['H|\\^&', 'P|1', 'L|1|N']);
  t.same(result, { status: 'sent', frames: 3, naks: 0, retries: 0 });
  t.equal(Buffer.concat(sender.received).toString('hex'), '06040404');
});
