// The ASTM end-to-end rig: a real `attache run` reading an analyzer simulator on a socat pty, and a
// raw instrument end for tests that play the analyzer byte by byte.
import { join } from 'node:path';
import { AstmReceiver } from '@attache/astm';
import { type AstmSenderFaults, AstmSenderSimulator, openPtyPair, type PtyPair } from '@attache/devkit';
import { SerialPort } from 'serialport';
import { type GatewayProcess, recordsOf, Stack } from './stack.js';

export interface Tap {
  teardown(fn: () => unknown): void;
}

export const astmDeviceId = 'hema-lab1';

/** A stack whose only device is an ASTM analyzer on `pty`. */
export interface AstmRig {
  stack: Stack;
  pty: PtyPair;
  gateway: GatewayProcess;
  /** A new analyzer simulator on the pty, opened; closed at teardown. */
  sender(faults?: AstmSenderFaults): Promise<AstmSenderSimulator>;
  /** Plugs the cable back in after `pty.close()`: a new pty pair at the same paths; closed at teardown. */
  replug(): Promise<PtyPair>;
}

export async function astmRig(
  t: Tap,
  options: {
    cache?: Record<string, unknown>;
    format?: Record<string, unknown>;
    /** More device settings, e.g. `rawFrames`. */
    device?: Record<string, unknown>;
  } = {},
): Promise<AstmRig> {
  const stack = await Stack.start(t);
  const ptyDir = join(stack.dir, 'astm');
  const pty = await openPtyPair(ptyDir);
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
      ...options.device,
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
  const replug = async () => {
    const again = await openPtyPair(ptyDir);
    t.teardown(() => again.close());
    return again;
  };
  return { stack, pty, gateway, sender, replug };
}

/** The instrument end opened raw, reading every byte the gateway sends. */
export class RawInstrument {
  readonly received: number[] = [];
  readonly #port: SerialPort;

  private constructor(port: SerialPort) {
    this.#port = port;
    port.on('data', (chunk: Buffer) => this.received.push(...chunk));
  }

  static async open(t: Tap, path: string): Promise<RawInstrument> {
    // No exclusive lock on the instrument end, like the devkit simulators.
    const port = new SerialPort({ path, baudRate: 9600, autoOpen: false, lock: false });
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
  async nextByte(seen: number, ms = 30_000): Promise<number> {
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
  async receiveTransfer(ms = 30_000): Promise<string[]> {
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

/** Opens a window and returns the records the broker received. */
export async function uploaded(rig: AstmRig): Promise<Record<string, unknown>[]> {
  const dashboard = await rig.stack.subscribe();
  const sync = await rig.stack.run('sync', '--json');
  if (sync.code !== 0) throw new Error(`sync failed: ${sync.stderr}`);
  return recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000));
}
