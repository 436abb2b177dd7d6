import { GatewayError } from '@attache/core';
import { SerialPort } from 'serialport';

const STX = 0x02;
const ETX = 0x03;
const EOT = 0x04;
const ENQ = 0x05;
const ACK = 0x06;
const NAK = 0x15;
const ETB = 0x17;
const CR = 0x0d;
const LF = 0x0a;
/** Longest frame text allowed by E1381, characters. */
const MAX_FRAME_TEXT = 240;
/** Control characters a frame's text must not hold (E1381 §6.6), CR and LF included. */
const RESTRICTED = new Set([
  0x01,
  STX,
  ETX,
  EOT,
  ENQ,
  ACK,
  LF,
  CR,
  0x10,
  0x11,
  0x12,
  0x13,
  0x14,
  NAK,
  0x16,
  ETB,
]);

/** Faults a {@link AstmSenderSimulator} injects, to test a receiver. */
export interface AstmSenderFaults {
  /** Sends frame n (1-based, counted in the message) once with a wrong checksum. */
  corruptFrame?: number;
  /** Ends frames `C1 C2 LF` instead of `C1 C2 CR LF`. */
  lfOnly?: boolean;
  /** Ends every frame with ETB except the message's last one (Roche cobas c111). */
  etbEveryFrame?: boolean;
  /** Splits frame text at this many characters instead of 240. */
  frameTextLength?: number;
}

/** Options of {@link AstmSenderSimulator}. */
export interface AstmSenderOptions {
  /** The serial path to write to: the device end of a pty pair, or a real port. */
  path: string;
  /** Default 9600. */
  baudRate?: number;
  /** How long to wait for the answer to the ENQ or to a frame, ms. Default 15 000 (E1381). */
  ackTimeoutMs?: number;
  /** Re-sends of an ENQ or of a frame before giving up with EOT. Default 6. */
  maxRetries?: number;
  /** Wait after a NAK (busy) or an ENQ (contention) answering the ENQ, ms. Default 10 000. */
  busyRetryMs?: number;
  /** Faults to inject, for tests. Default none. */
  faults?: AstmSenderFaults;
}

/** How a {@link AstmSenderSimulator.send} ended. */
export interface AstmSendResult {
  /** `sent`: every frame ACKed; `refused`: too many NAKs; `timeout`: no answer in `ackTimeoutMs`. */
  status: 'sent' | 'refused' | 'timeout';
  /** Frames acknowledged (ACK, or EOT as a receiver interrupt). */
  frames: number;
  /** NAKs received, to the ENQ and to frames. */
  naks: number;
  /** ENQs and frames sent again. */
  retries: number;
}

type Reply = number | 'timeout';

/**
 * The instrument side of ASTM E1381 / CLSI LIS1-A over a serial port: ENQ, frames with FN 1…7, 0…
 * and checksums, one ACK awaited per frame, re-sends on NAK, EOT (ASTM E1381).
 */
export class AstmSenderSimulator {
  /** Every byte the gateway sent back (ACK/NAK…), in order, one Buffer per chunk read. */
  readonly received: Buffer[] = [];
  readonly #options: AstmSenderOptions;
  readonly #ackTimeoutMs: number;
  readonly #maxRetries: number;
  readonly #busyRetryMs: number;
  #port: SerialPort | undefined;
  #pending: number[] = [];
  #waiter: ((reply: Reply | Error) => void) | undefined;
  #sending = false;

  /** @throws TypeError when a timer, `maxRetries` or a fault is out of range. */
  constructor(options: AstmSenderOptions) {
    this.#options = options;
    this.#ackTimeoutMs = positive(options.ackTimeoutMs ?? 15_000, 'ackTimeoutMs');
    this.#busyRetryMs = positive(options.busyRetryMs ?? 10_000, 'busyRetryMs', true);
    this.#maxRetries = options.maxRetries ?? 6;
    if (!Number.isInteger(this.#maxRetries) || this.#maxRetries < 0) {
      throw new TypeError('"maxRetries" must be an integer ≥ 0');
    }
    const length = options.faults?.frameTextLength;
    if (length !== undefined && (!Number.isInteger(length) || length < 1)) {
      throw new TypeError('"faults.frameTextLength" must be an integer ≥ 1');
    }
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
    port.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#port = port;
  }

  /** Closes the port; a `send()` in progress rejects `ATTACHE_CANCELED`. */
  async close(): Promise<void> {
    const port = this.#port;
    this.#port = undefined;
    this.#settle(new GatewayError('ATTACHE_CANCELED', 'the ASTM sender was closed'));
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /**
   * Sends one message (records without CR) with the whole link procedure and resolves with how it
   * ended. Rejects `ATTACHE_PORT_NOT_OPEN` before `open()`, `ATTACHE_CANCELED` when closed meanwhile.
   * @throws TypeError when `records` is empty, a record holds a restricted control character
   * (CR and LF included), or another send is running.
   */
  async send(records: string[]): Promise<AstmSendResult> {
    if (records.length === 0) throw new TypeError('"records" must not be empty');
    if (records.some((r) => [...r].some((ch) => RESTRICTED.has(ch.charCodeAt(0))))) {
      throw new TypeError('"records" must not contain CR, LF or E1381 restricted control characters');
    }
    if (this.#sending) throw new TypeError('"send" called while another send is running');
    if (!this.#port?.isOpen) throw new GatewayError('ATTACHE_PORT_NOT_OPEN', 'the ASTM sender is not open');
    this.#sending = true;
    this.#pending = [];
    const result: AstmSendResult = { status: 'sent', frames: 0, naks: 0, retries: 0 };
    try {
      result.status = await this.#establish(result);
      if (result.status === 'sent') result.status = await this.#transfer(this.#frames(records), result);
      await this.#write(Buffer.from([EOT]));
      return result;
    } finally {
      this.#sending = false;
    }
  }

  /** ENQ until ACK: resolves 'sent' when the transfer may start. */
  async #establish(result: AstmSendResult): Promise<AstmSendResult['status']> {
    for (let attempt = 0; ; attempt++) {
      await this.#write(Buffer.from([ENQ]));
      const reply = await this.#reply();
      if (reply === 'timeout') return 'timeout';
      if (reply === ACK) return 'sent';
      if (reply === NAK) result.naks++;
      if (attempt >= this.#maxRetries) return 'refused';
      result.retries++;
      await new Promise((resolve) => setTimeout(resolve, this.#busyRetryMs));
      this.#pending = [];
    }
  }

  /** Sends each frame until ACKed (EOT counts as ACK, ASTM E1381). */
  async #transfer(frames: Buffer[], result: AstmSendResult): Promise<AstmSendResult['status']> {
    const corrupt = this.#options.faults?.corruptFrame;
    for (const [i, frame] of frames.entries()) {
      for (let attempt = 0; ; attempt++) {
        const bad = attempt === 0 && corrupt === i + 1;
        await this.#write(bad ? corrupted(frame, this.#options.faults?.lfOnly === true) : frame);
        const reply = await this.#reply();
        if (reply === 'timeout') return 'timeout';
        if (reply === ACK || reply === EOT) break;
        if (reply === NAK) result.naks++;
        if (attempt >= this.#maxRetries) return 'refused';
        result.retries++;
      }
      result.frames++;
    }
    return 'sent';
  }

  /** The frames of a message, FN from 1, with the configured faults but no corrupted checksum. */
  #frames(records: string[]): Buffer[] {
    const faults = this.#options.faults ?? {};
    const size = faults.frameTextLength ?? MAX_FRAME_TEXT;
    const texts: { text: string; etx: boolean }[] = [];
    for (const record of records) {
      const text = `${record}\r`;
      for (let start = 0; start < text.length; start += size) {
        texts.push({ text: text.slice(start, start + size), etx: start + size >= text.length });
      }
    }
    return texts.map(({ text, etx }, i) => {
      const last = faults.etbEveryFrame ? i === texts.length - 1 : etx;
      return buildFrame((i + 1) % 8, text, last, faults.lfOnly === true);
    });
  }

  #onData(chunk: Buffer): void {
    this.received.push(chunk);
    this.#pending.push(...chunk);
    if (this.#waiter !== undefined) this.#settle(this.#pending.shift() ?? 'timeout');
  }

  #settle(reply: Reply | Error): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(reply);
  }

  /** The next byte from the gateway, or 'timeout' after `ackTimeoutMs`. */
  async #reply(): Promise<Reply> {
    const queued = this.#pending.shift();
    if (queued !== undefined) return queued;
    const reply = await new Promise<Reply | Error>((resolve) => {
      const timer = setTimeout(() => this.#settle('timeout'), this.#ackTimeoutMs);
      this.#waiter = (value) => {
        clearTimeout(timer);
        resolve(value);
      };
    });
    if (reply instanceof Error) throw reply;
    return reply;
  }

  async #write(data: Buffer): Promise<void> {
    const port = this.#port;
    if (!port?.isOpen) throw new GatewayError('ATTACHE_CANCELED', 'the ASTM sender was closed');
    await new Promise<void>((resolve, reject) => {
      port.write(data, (err) => (err ? reject(err) : port.drain((e) => (e ? reject(e) : resolve()))));
    });
  }
}

function positive(value: number, name: string, zeroAllowed = false): number {
  if (!(value > 0 || (zeroAllowed && value === 0))) throw new TypeError(`"${name}" must be greater than 0`);
  return value;
}

/** `STX FN text ETB|ETX C1 C2 CR LF` (or `… C1 C2 LF`). */
function buildFrame(fn: number, text: string, last: boolean, lfOnly: boolean): Buffer {
  const body = Buffer.concat([Buffer.from(`${fn}${text}`, 'latin1'), Buffer.from([last ? ETX : ETB])]);
  let sum = 0;
  for (const byte of body) sum = (sum + byte) & 0xff;
  const checksum = sum.toString(16).toUpperCase().padStart(2, '0');
  const trailer = lfOnly ? [LF] : [CR, LF];
  return Buffer.concat([Buffer.from([STX]), body, Buffer.from(checksum, 'latin1'), Buffer.from(trailer)]);
}

/** The frame with its checksum's low digit changed. */
function corrupted(frame: Buffer, lfOnly: boolean): Buffer {
  const copy = Buffer.from(frame);
  const at = copy.length - (lfOnly ? 2 : 3);
  copy[at] = copy[at] === 0x30 ? 0x31 : 0x30;
  return copy;
}
