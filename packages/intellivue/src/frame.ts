/** Beginning of frame. */
export const BOF = 0xc0;
/** End of frame. */
export const EOF = 0xc1;
/** Transparency escape: the next byte is XOR 0x20. `7D C1` aborts the frame. */
export const ESC = 0x7d;
/** Header: protocol id (Data Export), message type (AutoSpeed-less fixed baudrate data). */
const PROTOCOL_ID = 0x11;
const MESSAGE_TYPE = 0x01;

/** RFC 1662 FCS-16 table (reflected polynomial 0x8408). */
const TABLE = new Uint16Array(256).map((_, n) => {
  let v = n;
  for (let i = 0; i < 8; i++) v = v & 1 ? (v >>> 1) ^ 0x8408 : v >>> 1;
  return v;
});

/** The frame check sequence of `bytes`: FCS-16 of RFC 1662 (init 0xFFFF, ones-complemented). */
export function fcs16(bytes: Uint8Array, end = bytes.length): number {
  let fcs = 0xffff;
  for (let i = 0; i < end; i++) fcs = (fcs >>> 8) ^ (TABLE[(fcs ^ (bytes[i] as number)) & 0xff] as number);
  return ~fcs & 0xffff;
}

/** `C0 | 11 01 len | pdu | FCS (low byte first) | C1`, every byte between BOF and EOF escaped. */
export function encodeFrame(pdu: Buffer): Buffer {
  const body = Buffer.alloc(4 + pdu.length + 2);
  body[0] = PROTOCOL_ID;
  body[1] = MESSAGE_TYPE;
  body.writeUInt16BE(pdu.length, 2);
  pdu.copy(body, 4);
  const fcs = fcs16(body, 4 + pdu.length);
  body.writeUInt16LE(fcs, 4 + pdu.length);
  const out: number[] = [BOF];
  for (const b of body) {
    if (b === BOF || b === EOF || b === ESC) out.push(ESC, b ^ 0x20);
    else out.push(b);
  }
  out.push(EOF);
  return Buffer.from(out);
}

/** What the framer hands on: a PDU, or a frame it refused and why. */
export type FrameEvent = { ok: true; pdu: Buffer } | { ok: false; reason: string; bytes: number };

/**
 * Splits received bytes into Data Export PDUs. Each byte is looked at once (linear in the input);
 * escapes are undone, `7D C1` aborts the frame, a frame over `maxBytes` is dropped whole, and the
 * header (11 01, length) and FCS are checked before a PDU is handed on.
 */
export class IntelliVueFramer {
  readonly #maxBytes: number;
  readonly #buf: Buffer;
  #len = 0;
  #inFrame = false;
  #escaped = false;
  #overflow = false;
  #noise = 0;

  /** `maxBytes`: the longest frame kept (unescaped), default 8192. */
  constructor(maxBytes = 8192) {
    if (maxBytes < 8) throw new TypeError('"maxBytes" must be at least 8');
    this.#maxBytes = maxBytes;
    this.#buf = Buffer.alloc(maxBytes);
  }

  push(chunk: Buffer, emit: (event: FrameEvent) => void): void {
    for (const byte of chunk) {
      if (byte === BOF) {
        if (this.#noise > 0) emit({ ok: false, reason: 'bytes outside a frame', bytes: this.#noise });
        if (this.#inFrame && this.#len > 0)
          emit({ ok: false, reason: 'frame cut off by a new one', bytes: this.#len });
        this.#noise = 0;
        this.#inFrame = true;
        this.#escaped = false;
        this.#overflow = false;
        this.#len = 0;
      } else if (!this.#inFrame) {
        this.#noise++;
      } else if (byte === EOF) {
        this.#inFrame = false;
        emit(this.#escaped ? { ok: false, reason: 'frame aborted', bytes: this.#len } : this.#check());
      } else if (byte === ESC) {
        this.#escaped = true;
      } else {
        this.#add(this.#escaped ? byte ^ 0x20 : byte);
        this.#escaped = false;
      }
    }
  }

  /** A frame cut off (the link closed) is dropped; returns its length, 0 when none. */
  reset(): number {
    const cut = this.#inFrame ? this.#len : 0;
    this.#inFrame = false;
    this.#len = 0;
    this.#noise = 0;
    return cut;
  }

  #add(byte: number): void {
    if (this.#len < this.#maxBytes) this.#buf[this.#len] = byte;
    else this.#overflow = true;
    this.#len++;
  }

  #check(): FrameEvent {
    const n = this.#len;
    if (this.#overflow) return { ok: false, reason: `frame over ${this.#maxBytes} bytes`, bytes: n };
    if (n < 6) return { ok: false, reason: 'frame too short', bytes: n };
    if (this.#buf[0] !== PROTOCOL_ID || this.#buf[1] !== MESSAGE_TYPE)
      return { ok: false, reason: 'not a Data Export frame header', bytes: n };
    if (this.#buf.readUInt16BE(2) !== n - 6) return { ok: false, reason: 'frame length mismatch', bytes: n };
    if (this.#buf.readUInt16LE(n - 2) !== fcs16(this.#buf, n - 2))
      return { ok: false, reason: 'bad FCS', bytes: n };
    return { ok: true, pdu: Buffer.from(this.#buf.subarray(4, n - 2)) };
  }
}
