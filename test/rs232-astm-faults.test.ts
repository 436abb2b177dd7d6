// End-to-end: an ASTM E1381/E1394 analyzer on a socat pty, read by a real `attache run`: refusals, host queries, bad input.
import { join } from 'node:path';
import { AstmReceiver, frameAstmRecords } from '@attache/astm';
import {
  type AstmSenderFaults,
  AstmSenderSimulator,
  cbcMessage,
  openPtyPair,
  type PtyPair,
} from '@attache/devkit';
import { SerialPort } from 'serialport';
import t from 'tap';
import { type GatewayProcess, recordsOf, Stack } from './helpers/stack.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

const astmDeviceId = 'hema-lab1';

/** A stack whose only device is an ASTM analyzer on `pty`. */
interface AstmRig {
  stack: Stack;
  pty: PtyPair;
  gateway: GatewayProcess;
  /** A new analyzer simulator on the pty, opened; closed at teardown. */
  sender(faults?: AstmSenderFaults): Promise<AstmSenderSimulator>;
}

async function astmRig(
  t: Tap,
  options: { cache?: Record<string, unknown>; format?: Record<string, unknown> } = {},
): Promise<AstmRig> {
  const stack = await Stack.start(t);
  const pty = await openPtyPair(join(stack.dir, 'astm'));
  const opened: AstmSenderSimulator[] = [];
  t.teardown(async () => {
    for (const s of opened) await s.close();
    await pty.close();
  });
  const config = stack.config() as Record<string, unknown> & { cache: Record<string, unknown> };
  config.cache = { ...config.cache, ...options.cache };
  config.devices = [
    {
      id: astmDeviceId,
      adapter: 'rs232',
      port: { path: pty.gatewayPath, reconnectMs: 200 },
      format: { kind: 'astm', receiverTimeoutMs: 2000, ...options.format },
    },
  ];
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const sender = async (faults: AstmSenderFaults = {}) => {
    const s = new AstmSenderSimulator({
      path: pty.devicePath,
      ackTimeoutMs: 3000,
      busyRetryMs: 200,
      faults,
    });
    await s.open();
    opened.push(s);
    return s;
  };
  return { stack, pty, gateway, sender };
}

/** The instrument end opened raw, reading every byte the gateway sends. */
class RawInstrument {
  readonly received: number[] = [];
  readonly #port: SerialPort;

  private constructor(port: SerialPort) {
    this.#port = port;
    port.on('data', (chunk: Buffer) => this.received.push(...chunk));
  }

  static async open(t: Tap, path: string): Promise<RawInstrument> {
    const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    t.teardown(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
    return new RawInstrument(port);
  }

  async write(bytes: Buffer | number[]): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.#port.write(Buffer.from(bytes), (err) => (err ? reject(err) : this.#port.drain(() => resolve()))),
    );
  }

  /** Waits for the next byte the gateway sends (after `seen` bytes), or throws after `ms`. */
  async nextByte(seen: number, ms = 5000): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.received.length <= seen) {
      if (Date.now() > deadline) throw new Error('no byte from the gateway');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.received[seen] as number;
  }

  /**
   * Acts as the receiving instrument for one transfer from the gateway (its host-query reply):
   * answers ENQ and frames with an AstmReceiver and resolves with the records of the message.
   */
  async receiveTransfer(ms = 10_000): Promise<string[]> {
    const receiver = new AstmReceiver();
    let read = 0;
    const deadline = Date.now() + ms;
    for (;;) {
      if (Date.now() > deadline) throw new Error('no complete transfer from the gateway');
      if (read === this.received.length) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const chunk = Buffer.from(this.received.slice(read));
      read = this.received.length;
      for (const action of receiver.feed(chunk)) {
        if (action.type === 'send') await this.write(action.bytes);
        if (action.type === 'message') {
          if (action.awaitingStore) {
            for (const a of receiver.acknowledge(true)) if (a.type === 'send') await this.write(a.bytes);
          }
          return action.records;
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.#port.isOpen) await new Promise<void>((resolve) => this.#port.close(() => resolve()));
  }
}

async function uploaded(rig: AstmRig): Promise<Record<string, unknown>[]> {
  const dashboard = await rig.stack.subscribe();
  const sync = await rig.stack.run('sync', '--json');
  if (sync.code !== 0) throw new Error(`sync failed: ${sync.stderr}`);
  return recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 10_000));
}

t.test('a full cache NAKs the final frame: the analyzer keeps its data and re-sends it later', async (t) => {
  const rig = await astmRig(t, { cache: { maxRecords: 1, whenFull: 'refuse' } });
  const s = await rig.sender();
  t.equal((await s.send(cbcMessage({ count: 20 }))).status, 'sent');
  const refused = await s.send(cbcMessage({ count: 21 }));
  t.equal(refused.status, 'refused', 'the final frame is NAKed until the analyzer gives up');
  t.equal(refused.naks, 7);
  const status = await rig.stack.statusUntil((st) => (st.adapters[0]?.refused ?? 0) >= 7);
  t.equal(status.backlog.records, 1);
  await uploaded(rig);
  t.equal((await s.send(cbcMessage({ count: 21 }))).status, 'sent', 'after the window the re-send is stored');
  await rig.stack.statusUntil((st) => st.backlog.records === 1 && st.adapters[0]?.stored === 2);
});

t.test('a host query is recorded as an event and answered "no information" after EOT', async (t) => {
  const rig = await astmRig(t);
  const raw = await RawInstrument.open(t, rig.pty.devicePath);
  const query = [
    'H|\\^&|||XN-550^00-24^22723|||||||P|E1394-97|20240627135000',
    'Q|1|^^SMP0001||^^^ALL||||||||O',
    'L|1|N',
  ];
  await raw.write([0x05]);
  let seen = 0;
  t.equal(await raw.nextByte(seen++), 0x06);
  for (const frame of frameAstmRecords(query)) {
    await raw.write(frame);
    t.equal(await raw.nextByte(seen++), 0x06);
  }
  await raw.write([0x04]);
  const reply = await raw.receiveTransfer();
  t.match(reply[0], /^H\|\\\^&\|\|\|Attache\|/, 'the reply starts with an H record');
  t.equal(reply[1], 'L|1|I', 'termination code I: no information');
  const records = await uploaded(rig);
  t.match(records[0], {
    event: { type: 'astm.query', detail: { tests: 'ALL', statusCode: 'O' } },
    observations: [],
  });
  t.notMatch(JSON.stringify(records), /SMP0001/, 'the specimen id is tokenized');
});

t.test(
  'bad input: random bytes, truncated and oversize frames, wrong FN, no EOT: counted, no crash',
  async (t) => {
    const rig = await astmRig(t);
    const raw = await RawInstrument.open(t, rig.pty.devicePath);
    let random = 7;
    const noise = Buffer.from(
      Array.from({ length: 20_000 }, () => (random = (random * 1103515245 + 12345) & 0xff)),
    );
    await raw.write(noise);
    await raw.write([0x05]);
    const good = frameAstmRecords(['H|\\^&|||X', 'R|1|^^^A|1', 'L|1|N']);
    await raw.write(frameAstmRecords(['H|\\^&|||X'], 5)[0] as Buffer);
    await raw.write(Buffer.from('\x021H|\\^&|trunc', 'latin1'));
    await raw.write(
      Buffer.concat([
        Buffer.from('\x021', 'latin1'),
        Buffer.alloc(5000, 0x41),
        Buffer.from('\x0300\r\n', 'latin1'),
      ]),
    );
    // Frame 1 valid, then silence without EOT: the receiver timer (2 s here) abandons the transfer.
    await raw.write(good[0] as Buffer);
    const status = await rig.stack.statusUntil((s) => (s.adapters[0]?.malformed ?? 0) >= 3);
    await rig.gateway.waitForLog((l) => String(l.msg).startsWith('ASTM transfer timed out'));
    t.equal(status.backlog.records, 0, 'nothing stored from garbage');
    t.equal(rig.gateway.child.exitCode, null, 'the gateway still runs');
    const text = JSON.stringify(rig.gateway.logs);
    t.match(text, /unexpected frame number/);
    t.match(text, /frame text too long/);
    await raw.close();
    const s = await rig.sender();
    t.equal((await s.send(cbcMessage({ count: 20 }))).status, 'sent', 'a good message afterwards is read');
    await rig.stack.statusUntil((st) => st.backlog.records === 1);
  },
);
