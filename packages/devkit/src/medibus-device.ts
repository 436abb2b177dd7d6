import { type DevicePort, openDevicePort } from './device-port.js';

const ESC = 0x1b;
const SOH = 0x01;
const CR = 0x0d;

/** One current alarm of a simulated MEDIBUS device. */
export interface MedibusSimAlarm {
  /** 1 (lowest) … 31 (highest). */
  priority: number;
  /** The alarm code, 0-255. */
  code: number;
  /** The alarm phrase, up to 12 characters. */
  text: string;
}

/** Faults a {@link MedibusDeviceSimulator} injects. */
export interface MedibusSimFaults {
  /** The next n replies are not sent. */
  drop: number;
  /** The next n replies go out with a wrong checksum. */
  corrupt: number;
  /** While true, nothing is answered (a device switched off, a cable pulled at the device). */
  silent: boolean;
  /** Measured-data replies (0-based, counted over the simulator's life) sent with a wrong checksum. */
  corruptMeasurements: number[];
}

/** Options of {@link MedibusDeviceSimulator}. */
export interface MedibusDeviceSimulatorOptions {
  /** The serial path for `open()`: the device end of a pty pair. Not needed with `attach()`. */
  path?: string;
  /** Default 19200. */
  baudRate?: number;
  /** Identification reply data. Default `0161'Evita4'04.20`. */
  identity?: string;
  /** Called as each reply is written, with its command character (a benchmark times replies with it). */
  onReply?: (command: string) => void;
}

/** The commands the simulator answers. */
const KNOWN = new Set(['Q', '0', 'R', '$', '+', ')', '%', '&', "'", '*']);

function hex2(n: number): string {
  return (n & 0xff).toString(16).toUpperCase().padStart(2, '0');
}

/** `lead cmd data CS CR`, the checksum computed here independently of the gateway's driver. */
function message(lead: number, command: number, data: string, corrupt = false): Buffer {
  const body = Buffer.from(String.fromCharCode(lead, command) + data, 'latin1');
  let sum = 0;
  for (const b of body) sum += b;
  return Buffer.concat([body, Buffer.from(`${hex2(corrupt ? sum + 1 : sum)}\r`, 'latin1')]);
}

/**
 * A Dräger ventilator as the MEDIBUS protocol shows it: answers ICC, NOP, identification, measured
 * data (code page 1, changing a little with every reply), settings, alarm limits, alarms and text
 * messages, each reply `SOH cmd data CS CR` with the checksum of the MEDIBUS rules, and checks the
 * checksum of every command (a bad one is not answered). Faults: dropped replies, corrupt
 * checksums, silence. Runs in memory (`attach`) or on a serial path (`open`).
 */
export class MedibusDeviceSimulator {
  readonly faults: MedibusSimFaults = { drop: 0, corrupt: 0, silent: false, corruptMeasurements: [] };
  /** Current alarms (what the next alarm reply lists). */
  alarms: MedibusSimAlarm[] = [];
  /** Device settings (code → value, up to 5 characters). */
  settings = new Map<number, string>([
    [0x01, '40'],
    [0x04, '0.50'],
  ]);
  /** Requests seen, by command character. */
  readonly requests = new Map<string, number>();
  /** Commands sent with a bad checksum (not answered). */
  badCommands = 0;
  /** Echoes the host sent back to the device's own commands. */
  echoes = 0;
  /** The measured data of every code-page-1 reply sent, in order (code → value text). */
  readonly sentMeasurements: Map<number, string>[] = [];
  /** Indexes into `sentMeasurements` of the replies sent with a corrupt checksum. */
  readonly corrupted: number[] = [];
  /** After this many measured-data replies the device goes silent (so a test knows exactly what was sent). */
  measurementLimit = Number.POSITIVE_INFINITY;
  readonly #options: MedibusDeviceSimulatorOptions;
  #write: (bytes: Buffer) => void = () => undefined;
  #port: DevicePort | undefined;
  #buf: number[] = [];
  #inMessage = false;

  constructor(options: MedibusDeviceSimulatorOptions = {}) {
    this.#options = options;
  }

  /** Runs in memory: replies go to `write`. */
  attach(write: (bytes: Buffer) => void): void {
    this.#write = write;
  }

  /** Opens `path` and answers the host on it. */
  async open(): Promise<void> {
    const path = this.#options.path;
    if (path === undefined) throw new TypeError('"path" is required to open the simulator');
    const port = await openDevicePort(path, this.#options.baudRate ?? 19200, (chunk) => this.receive(chunk));
    this.#port = port;
    this.#write = port.write;
  }

  async close(): Promise<void> {
    const port = this.#port;
    this.#port = undefined;
    await port?.close();
  }

  /** Count of requests seen for `command` (a character such as `$`). */
  seen(command: string): number {
    return this.requests.get(command) ?? 0;
  }

  /** Sends the device's own command (e.g. `0`, NOP): the host must echo it. */
  sendCommand(command: string): void {
    this.#write(message(ESC, command.charCodeAt(0), ''));
  }

  /** Bytes from the host. */
  receive(chunk: Buffer): void {
    for (const byte of chunk) {
      if (byte === ESC || byte === SOH) {
        this.#buf = [byte];
        this.#inMessage = true;
      } else if (this.#inMessage && byte === CR) {
        this.#inMessage = false;
        this.#handle(Buffer.from(this.#buf));
      } else if (this.#inMessage && this.#buf.length < 1024) this.#buf.push(byte);
    }
  }

  #handle(msg: Buffer): void {
    if (msg.length < 4) return;
    let sum = 0;
    for (let i = 0; i < msg.length - 2; i++) sum += msg[i] as number;
    if (msg.toString('latin1', msg.length - 2) !== hex2(sum)) {
      this.badCommands++;
      return;
    }
    const command = String.fromCharCode(msg[1] as number);
    if (msg[0] === SOH) {
      this.echoes++;
      return;
    }
    this.requests.set(command, this.seen(command) + 1);
    if (this.faults.silent || !KNOWN.has(command)) return;
    if (this.faults.drop > 0) {
      this.faults.drop--;
      return;
    }
    const data = this.#data(command);
    const index = this.sentMeasurements.length - 1;
    const corrupt =
      this.faults.corrupt > 0 || (command === '$' && this.faults.corruptMeasurements.includes(index));
    if (this.faults.corrupt > 0) this.faults.corrupt--;
    if (corrupt && command === '$') this.corrupted.push(index);
    this.#options.onReply?.(command);
    this.#write(message(SOH, msg[1] as number, data, corrupt));
    if (command === '$' && this.sentMeasurements.length >= this.measurementLimit) this.faults.silent = true;
  }

  #data(command: string): string {
    switch (command) {
      case 'Q':
      case '0':
        return '';
      case 'R':
        return this.#options.identity ?? "0161'Evita4'04.20";
      case '$':
        return this.#measurements();
      case '+':
        return `${hex2(0x05)}  12`;
      case ')':
        return [...this.settings].map(([c, v]) => hex2(c) + v.padStart(5).slice(0, 5)).join('');
      case '%':
        return `${hex2(0xd6)}   5${hex2(0x7d)}   5`;
      case '&':
        return `${hex2(0xd6)}  40${hex2(0x7d)}  40`;
      case "'":
        return this.alarms
          .map((a) => String.fromCharCode(0x30 + a.priority) + hex2(a.code) + a.text.padEnd(12).slice(0, 12))
          .join('');
      case '*':
        return `${hex2(0x10)}${String.fromCharCode(0x30 + 7)}STANDBY\x03`;
      default:
        return '';
    }
  }

  /** Peak, mean, PEEP, tidal and minute volume, rate, FiO2: the rate and tidal volume move with each reply. */
  #measurements(): string {
    const n = this.sentMeasurements.length;
    const values = new Map<number, string>([
      [0x7d, '25'],
      [0x73, '12'],
      [0x78, '5'],
      [0x88, String(500 + (n % 10) * 2)],
      [0xb8, '7.3'],
      [0xd6, String(14 + (n % 3))],
      [0xf0, '40'],
      // A code the gateway's table does not know: kept as the device's code.
      [0x05, '1.5'],
    ]);
    this.sentMeasurements.push(values);
    return [...values].map(([c, v]) => hex2(c) + v.padStart(4)).join('');
  }
}
