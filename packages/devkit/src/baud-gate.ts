import { execFile } from 'node:child_process';
import { SerialPort } from 'serialport';

/** Options of {@link BaudGateRelay}. */
export interface BaudGateOptions {
  /** Where the simulated device's bytes arrive: the gateway end of the device's pty pair. */
  devicePath: string;
  /** The device end of the probe's pty pair: the relay writes there. */
  relayPath: string;
  /** The probe's end (the tty whose speed is checked with `stty -F`). */
  watchPath: string;
  /** The device's baud rate: only at this speed do bytes pass unchanged. */
  baudRate: number;
}

/** What a UART set to the wrong speed makes of a byte: something with the high bit set. */
function garble(bytes: Buffer): Buffer {
  return Buffer.from(bytes.map((b) => ((b * 0x9d + 0x5b) & 0x7f) | 0x80));
}

function speedOf(path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('stty', ['-F', path, 'speed'], (err, stdout) =>
      resolve(err ? undefined : Number(stdout.trim())),
    );
  });
}

/**
 * Relays bytes between two pty pairs as a serial cable would at a fixed baud rate: when the speed
 * set on `watchPath` (read with `stty -F`, which a pty keeps although it does not enforce it)
 * differs from `baudRate`, the bytes come out garbled, in both directions. A pty keeps no parity or
 * data-bit setting, so only the baud rate can be gated this way.
 */
export class BaudGateRelay {
  readonly #options: BaudGateOptions;
  #device: SerialPort | undefined;
  #relay: SerialPort | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(options: BaudGateOptions) {
    this.#options = options;
  }

  /** Opens both ends. Rejects with serialport's error when one cannot be opened. */
  async start(): Promise<void> {
    const open = (path: string) =>
      new Promise<SerialPort>((resolve, reject) => {
        const port = new SerialPort({ path, baudRate: this.#options.baudRate, autoOpen: false });
        port.open((err) => (err ? reject(err) : resolve(port)));
      });
    this.#device = await open(this.#options.devicePath);
    this.#relay = await open(this.#options.relayPath);
    this.#device.on('data', (chunk: Buffer) => this.#forward(chunk, this.#relay));
    this.#relay.on('data', (chunk: Buffer) => this.#forward(chunk, this.#device));
  }

  /** Closes both ends. */
  async stop(): Promise<void> {
    await this.#chain;
    for (const port of [this.#device, this.#relay]) {
      if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    }
  }

  #forward(chunk: Buffer, to: SerialPort | undefined): void {
    this.#chain = this.#chain.then(async () => {
      const speed = await speedOf(this.#options.watchPath);
      if (to?.isOpen) to.write(speed === this.#options.baudRate ? chunk : garble(chunk));
    });
  }
}
