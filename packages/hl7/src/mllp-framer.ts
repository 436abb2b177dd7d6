/** MLLP start block, VT. */
export const MLLP_START = 0x0b;
/** MLLP end block, FS. */
export const MLLP_END = 0x1c;
export const CR = 0x0d;
const LF = 0x0a;

/** What {@link MllpFramer.push} found, in stream order. */
export type MllpEvent =
  /** A complete message, without VT, FS and CR. */
  | { type: 'message'; payload: Buffer }
  /** Bytes outside any frame (or a frame abandoned by a new VT), discarded. */
  | { type: 'junk'; bytes: number }
  /** A frame grew past `maxMessageBytes`: discarded. The caller should close the connection. */
  | { type: 'oversize'; bytes: number };

/** Options of {@link MllpFramer}. */
export interface MllpFramerOptions {
  /** Largest message kept, in bytes without VT/FS/CR. Integer ≥ 1. */
  maxMessageBytes: number;
}

type State = 'outside' | 'inside' | 'after-end' | 'discarding';

/**
 * MLLP framing (HL7 v2.5.1 Appendix C) as a pure class: feed it the bytes of one
 * connection, get messages back. Tolerates frames split across reads, several frames per read, junk
 * before VT, and a missing CR after FS (FS alone ends the message). Memory is bounded by
 * `maxMessageBytes`.
 */
export class MllpFramer {
  readonly #max: number;
  #state: State = 'outside';
  #parts: Buffer[] = [];
  #size = 0;

  /** @throws TypeError when `maxMessageBytes` is not an integer ≥ 1. */
  constructor(options: MllpFramerOptions) {
    if (!Number.isInteger(options?.maxMessageBytes) || options.maxMessageBytes < 1) {
      throw new TypeError('"maxMessageBytes" must be an integer greater than 0');
    }
    this.#max = options.maxMessageBytes;
  }

  /** Bytes of the frame being received (0 between frames). */
  get buffered(): number {
    return this.#size;
  }

  /** Processes one read; returns what it completed, in order. */
  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#state === 'after-end') {
        if (chunk[pos] === CR) pos++;
        this.#state = 'outside';
      } else if (this.#state === 'outside') {
        pos = this.#outside(chunk, pos, events);
      } else {
        pos = this.#inside(chunk, pos, events);
      }
    }
    return events;
  }

  /** The stream ended: a partial frame is reported as junk. */
  end(): MllpEvent[] {
    const bytes = this.#size;
    this.#reset('outside');
    return bytes > 0 ? [{ type: 'junk', bytes }] : [];
  }

  #outside(chunk: Buffer, pos: number, events: MllpEvent[]): number {
    const start = chunk.indexOf(MLLP_START, pos);
    const end = start === -1 ? chunk.length : start;
    let junk = 0;
    for (let i = pos; i < end; i++) if (chunk[i] !== CR && chunk[i] !== LF) junk++;
    if (junk > 0) events.push({ type: 'junk', bytes: junk });
    if (start === -1) return chunk.length;
    this.#reset('inside');
    return start + 1;
  }

  #inside(chunk: Buffer, pos: number, events: MllpEvent[]): number {
    const fs = chunk.indexOf(MLLP_END, pos);
    const vt = chunk.indexOf(MLLP_START, pos);
    const stop = vt !== -1 && (fs === -1 || vt < fs) ? vt : fs;
    const end = stop === -1 ? chunk.length : stop;
    this.#collect(chunk.subarray(pos, end), events);
    if (stop === -1) return chunk.length;
    if (stop === vt) {
      // A new VT before FS: the sender gave up on that frame and starts over.
      if (this.#state === 'inside' && this.#size > 0) events.push({ type: 'junk', bytes: this.#size });
      this.#reset('inside');
      return vt + 1;
    }
    if (this.#state === 'inside') events.push({ type: 'message', payload: this.#take() });
    this.#reset('after-end');
    return fs + 1;
  }

  #collect(bytes: Buffer, events: MllpEvent[]): void {
    if (bytes.length === 0) return;
    this.#size += bytes.length;
    if (this.#state === 'discarding') return;
    if (this.#size > this.#max) {
      events.push({ type: 'oversize', bytes: this.#size });
      this.#parts = [];
      this.#state = 'discarding';
      return;
    }
    this.#parts.push(Buffer.from(bytes));
  }

  #take(): Buffer {
    return this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#size);
  }

  #reset(state: State): void {
    this.#state = state;
    this.#parts = [];
    this.#size = 0;
  }
}

/** Wraps a message in an MLLP frame: VT, the message, FS, CR. */
export function encodeMllp(message: string | Buffer): Buffer {
  const body = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
  return Buffer.concat([Buffer.from([MLLP_START]), body, Buffer.from([MLLP_END, CR])]);
}
