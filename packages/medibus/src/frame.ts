/** Start of a command (host or device asks). */
export const ESC = 0x1b;
/** Start of a reply (the answer echoes the command byte). */
export const SOH = 0x01;
/** End of every message. */
export const CR = 0x0d;

/** The command bytes the driver uses (MEDIBUS command set; see the README for the source). */
export const Command = {
  icc: 0x51,
  nop: 0x30,
  stop: 0x55,
  identify: 0x52,
  measurements: 0x24,
  measurementsCp2: 0x2b,
  lowLimits: 0x25,
  highLimits: 0x26,
  alarms: 0x27,
  time: 0x28,
  settings: 0x29,
  text: 0x2a,
} as const;

/** One message read off the link, checksum checked. */
export interface MedibusMessage {
  /** `command`: ESC-led (the other side asks); `reply`: SOH-led (the other side answers). */
  kind: 'command' | 'reply';
  /** The command byte (echoed in a reply). */
  command: number;
  /** The bytes between the command byte and the checksum. */
  data: Buffer;
  /** The whole message, CR excluded, for its length. */
  length: number;
}

/** What the framer hands on: a message, or a unit it refused and why. */
export type FrameEvent = { ok: true; message: MedibusMessage } | { ok: false; reason: string; bytes: number };

const HEX = '0123456789ABCDEF';

/** The checksum of `bytes`: their sum mod 256, as two uppercase hex ASCII characters. */
export function checksum(bytes: Uint8Array, end = bytes.length): string {
  let sum = 0;
  for (let i = 0; i < end; i++) sum = (sum + (bytes[i] as number)) & 0xff;
  return `${HEX[sum >> 4]}${HEX[sum & 15]}`;
}

function encode(lead: number, command: number, data: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from([lead, command]), Buffer.from(data)]);
  return Buffer.concat([body, Buffer.from(`${checksum(body)}\r`, 'latin1')]);
}

/** `ESC cmd args CS CS CR`. */
export function encodeCommand(command: number, args: Buffer | string = ''): Buffer {
  return encode(ESC, command, args);
}

/** `SOH cmd data CS CS CR`. */
export function encodeReply(command: number, data: Buffer | string = ''): Buffer {
  return encode(SOH, command, data);
}

/**
 * Splits received bytes into MEDIBUS messages: from an ESC or SOH to the next CR. Each byte is looked
 * at once (linear in the input); a message longer than `maxBytes` is dropped whole, bytes outside a
 * message are skipped and reported once per run. The checksum is compared case-insensitively.
 */
export class MedibusFramer {
  readonly #maxBytes: number;
  readonly #buf: Buffer;
  #len = 0;
  #inMessage = false;
  #overflow = false;
  #noise = 0;

  /** `maxBytes`: the longest message kept, default 4096. */
  constructor(maxBytes = 4096) {
    if (maxBytes < 8) throw new TypeError('"maxBytes" must be at least 8');
    this.#maxBytes = maxBytes;
    this.#buf = Buffer.alloc(maxBytes);
  }

  /** Feeds `chunk`; calls `emit` for every message or refused unit it completes. */
  push(chunk: Buffer, emit: (event: FrameEvent) => void): void {
    for (const byte of chunk) {
      if (byte === ESC || byte === SOH) {
        this.#flushNoise(emit);
        if (this.#inMessage) emit({ ok: false, reason: 'message cut off by a new one', bytes: this.#len });
        this.#start(byte);
      } else if (!this.#inMessage) {
        this.#noise++;
      } else if (byte === CR) {
        this.#end(emit);
      } else if (this.#len < this.#maxBytes) {
        this.#buf[this.#len++] = byte;
      } else {
        this.#overflow = true;
        this.#len++;
      }
    }
  }

  /** A message cut off (the link closed) is dropped; returns its length, 0 when none. */
  reset(): number {
    const cut = this.#inMessage ? this.#len : 0;
    this.#inMessage = false;
    this.#len = 0;
    this.#noise = 0;
    return cut;
  }

  #start(byte: number): void {
    this.#inMessage = true;
    this.#overflow = false;
    this.#buf[0] = byte;
    this.#len = 1;
  }

  #flushNoise(emit: (event: FrameEvent) => void): void {
    if (this.#noise === 0) return;
    emit({ ok: false, reason: 'bytes outside a message', bytes: this.#noise });
    this.#noise = 0;
  }

  #end(emit: (event: FrameEvent) => void): void {
    this.#inMessage = false;
    emit(this.#check(this.#len));
  }

  #check(length: number): FrameEvent {
    if (this.#overflow) return { ok: false, reason: `message over ${this.#maxBytes} bytes`, bytes: length };
    if (length < 4) return { ok: false, reason: 'message too short', bytes: length };
    const sent = this.#buf.toString('latin1', length - 2, length).toUpperCase();
    if (sent !== checksum(this.#buf, length - 2)) return { ok: false, reason: 'bad checksum', bytes: length };
    return {
      ok: true,
      message: {
        kind: this.#buf[0] === ESC ? 'command' : 'reply',
        command: this.#buf[1] as number,
        data: Buffer.from(this.#buf.subarray(2, length - 2)),
        length,
      },
    };
  }
}
