import type { AttacheConfigInput, Logger } from '@attache/core';
import { GatewayError, nullLogger } from '@attache/core';
import { SerialPort } from 'serialport';

/** `nonin`: `SPO2=097 HR=072` lines (Avant 9600 / BT4000). `masimo`: Radical-7 "ASCII 1" lines. */
export type DeviceProfile = 'nonin' | 'masimo';

/** A device's `format` section as written in a config file. */
type FormatInput = Extract<AttacheConfigInput['devices'][number], { adapter: 'rs232' }>['format'];

/**
 * The config `format` that reads a simulator profile: what a technician would write for the real
 * device (MDC codes and UCUM units; site-local codes where MDC has no verified one).
 */
export function profileFormat(profile: DeviceProfile): FormatInput {
  if (profile === 'nonin') {
    return {
      kind: 'kv-line',
      fields: {
        SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
        HR: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
      },
      flags: { '*': 'event' },
    };
  }
  return {
    kind: 'kv-line',
    timestamp: 'MM/DD/YY HH:mm:ss',
    fields: {
      SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
      BPM: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
      PI: { code: 'MDC_PULS_OXIM_PERF_REL', unit: '%' },
      // An alarm says a value crossed its limit, not that it is unreliable: kept, flags nothing.
      ALARM: { code: 'masimo-alarm', system: 'LOCAL', unit: '1', type: 'hex' },
      // Every EXC bit but 800 (full SET mode, informational) is a sensor exception (docs/devices.md).
      EXC: { code: 'masimo-exception', system: 'LOCAL', unit: '1', type: 'hex', questionableMask: 'FFF7FF' },
    },
  };
}

/** Options of {@link LineDeviceSimulator}. */
export interface LineDeviceSimulatorOptions {
  /** The serial path to write to: the device end of a pty pair, or a real port. */
  path: string;
  profile: DeviceProfile;
  /** Time between lines after `start()`, ms. Default 1000 (both devices send once per second). */
  intervalMs?: number;
  /** Default 9600. */
  baudRate?: number;
  /** Seed of the value generator: the same seed gives the same values. Default 1. */
  seed?: number;
  /** Where write failures during `start()` are logged. Default `nullLogger`. */
  logger?: Logger;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/**
 * Writes realistic bedside-device lines (ending CR LF) to a serial path, with values that drift
 * deterministically from a seed. `nonin` sends `SPO2=097 HR=072`, now and then `SPO2=--- HR=---`
 * (no data) and an event marker glued to the last value (`HR=071*`, as Nonin does); `masimo` sends
 * `MM/DD/YY HH:MM:SS SN=… SPO2=098% BPM=072 PI=03.60% … ALARM=0000 EXC=000800` (SET mode; `000820` sensor off, without values) with the current
 * local time, now and then a no-data line or a non-zero ALARM.
 */
export class LineDeviceSimulator {
  readonly #options: LineDeviceSimulatorOptions;
  readonly #random: () => number;
  readonly #log: Logger;
  #port: SerialPort | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sent = 0;
  #spo2 = 97;
  #pulse = 72;

  constructor(options: LineDeviceSimulatorOptions) {
    this.#options = options;
    this.#random = seededRandom(options.seed ?? 1);
    this.#log = options.logger ?? nullLogger;
  }

  /** Lines sent by `sendReading()` (and by `start()`), not counting `sendRaw()`. */
  get sent(): number {
    return this.#sent;
  }

  /** Opens the port. Rejects with serialport's error when the path cannot be opened. */
  async open(): Promise<void> {
    const port = new SerialPort({
      path: this.#options.path,
      baudRate: this.#options.baudRate ?? 9600,
      autoOpen: false,
      // The device end of a test pty takes no exclusive lock: a test replaces one simulated device
      // with the next at once, and CI saw the closed port's flock outlive its close callback.
      lock: false,
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    this.#port = port;
  }

  /** Stops the interval and closes the port. */
  async close(): Promise<void> {
    this.stop();
    const port = this.#port;
    this.#port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /** Sends one generated line and resolves with it (without CR LF) once it is written. */
  async sendReading(): Promise<string> {
    const line = this.#options.profile === 'nonin' ? this.#nonin() : this.#masimo();
    await this.#write(`${line}\r\n`);
    this.#sent++;
    return line;
  }

  /** Sends `data` as is (for malformed-input tests). Rejects `ATTACHE_PORT_NOT_OPEN` before `open()`. */
  async sendRaw(data: string | Buffer): Promise<void> {
    await this.#write(data);
  }

  /** Sends a line every `intervalMs` until `stop()`; write failures are logged. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.sendReading().catch((err: unknown) => this.#log.error({ err }, 'simulator write failed'));
    }, this.#options.intervalMs ?? 1000);
  }

  /** Stops sending. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #write(data: string | Buffer): Promise<void> {
    const port = this.#port;
    if (!port?.isOpen) throw new GatewayError('ATTACHE_PORT_NOT_OPEN', 'the simulator port is not open');
    await new Promise<void>((resolve, reject) => {
      port.write(data, (err) => (err ? reject(err) : port.drain((e) => (e ? reject(e) : resolve()))));
    });
  }

  /** Moves the simulated patient's values a little, within physiological bounds. */
  #drift(): void {
    const step = () => Math.floor(this.#random() * 3) - 1;
    this.#spo2 = Math.min(100, Math.max(90, this.#spo2 + step()));
    this.#pulse = Math.min(110, Math.max(55, this.#pulse + step() * 2));
  }

  #nonin(): string {
    this.#drift();
    if (this.#random() < 0.08) return 'SPO2=--- HR=---';
    const event = this.#random() < 0.05 ? '*' : '';
    return `SPO2=${pad(this.#spo2, 3)} HR=${pad(this.#pulse, 3)}${event}`;
  }

  #masimo(): string {
    this.#drift();
    const now = new Date();
    const stamp =
      `${pad(now.getMonth() + 1, 2)}/${pad(now.getDate(), 2)}/${pad(now.getFullYear() % 100, 2)} ` +
      `${pad(now.getHours(), 2)}:${pad(now.getMinutes(), 2)}:${pad(now.getSeconds(), 2)}`;
    const tail = 'SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+--';
    if (this.#random() < 0.08) {
      return `${stamp} SN=0000070986 SPO2=---% BPM=--- PI=--.--% ${tail} PVI=--- ALARM=0000 EXC=000820`;
    }
    const pi = (1 + this.#random() * 4).toFixed(2).padStart(5, '0');
    const pvi = pad(10 + Math.floor(this.#random() * 10), 3);
    const alarm = this.#random() < 0.06 ? '0002' : '0000';
    return (
      `${stamp} SN=0000070986 SPO2=${pad(this.#spo2, 3)}% BPM=${pad(this.#pulse, 3)} PI=${pi}% ` +
      `${tail} PVI=${pvi} ALARM=${alarm} EXC=000800`
    );
  }
}
