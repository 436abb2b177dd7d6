/** What a {@link LineFramer} found in the bytes it was given, in order. */
export type LineEvent =
  /** A line, without its delimiter. */
  | { type: 'line'; line: Buffer }
  /** A run longer than `maxLineBytes` was dropped (once per run, with the bytes seen so far). */
  | { type: 'overlong'; bytes: number }
  /** At the end, an unterminated remainder was dropped (a line cut off may end in a truncated value). */
  | { type: 'incomplete'; bytes: number };

/** Options of {@link LineFramer}. */
export interface LineFramerOptions {
  /**
   * The line delimiter, e.g. `"\r\n"`; not empty. Default: any line end (CR, LF or CR LF; the empty
   * line between CR and LF is a blank line, which line sessions skip).
   */
  delimiter?: string | Buffer;
  /** The longest line kept, in bytes without the delimiter; a longer run is discarded. Integer ≥ 1. */
  maxLineBytes: number;
}

const CR = 0x0d;
const LF = 0x0a;

/** The index of the first CR or LF in `data`, or -1. */
function lineEnd(data: Buffer): number {
  const cr = data.indexOf(CR);
  const lf = data.indexOf(LF);
  if (cr === -1) return lf;
  return lf === -1 ? cr : Math.min(cr, lf);
}

/**
 * Splits a byte stream into lines, like serialport's parser-delimiter, but bounded: a run of more
 * than `maxLineBytes` bytes without a delimiter is dropped (`overlong`, once per run) and framing
 * resumes after the next delimiter, so a device sending garbage without delimiters never fills
 * memory. Linear in its input. No I/O: every transport (serial port, TCP) feeds it the same way.
 */
export class LineFramer {
  readonly #delimiter: Buffer | undefined;
  readonly #maxLineBytes: number;
  #buffer = Buffer.alloc(0);
  /** True while dropping an over-long run, until the next delimiter. */
  #discarding = false;

  /** @throws TypeError for an empty delimiter or a `maxLineBytes` that is not an integer ≥ 1. */
  constructor(options: LineFramerOptions) {
    if (options?.delimiter !== undefined && options.delimiter.length === 0) {
      throw new TypeError('"delimiter" must be a non-empty string or Buffer');
    }
    if (!Number.isInteger(options?.maxLineBytes) || options.maxLineBytes < 1) {
      throw new TypeError('"maxLineBytes" must be an integer greater than 0');
    }
    this.#delimiter = options.delimiter === undefined ? undefined : Buffer.from(options.delimiter);
    this.#maxLineBytes = options.maxLineBytes;
  }

  /** Frames `chunk` after the bytes kept from earlier chunks. */
  push(chunk: Buffer): Exclude<LineEvent, { type: 'incomplete' }>[] {
    const events: Exclude<LineEvent, { type: 'incomplete' }>[] = [];
    let data = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const width = this.#delimiter?.length ?? 1;
    let position = this.#find(data);
    while (position !== -1) {
      this.#line(data.subarray(0, position), events);
      data = data.subarray(position + width);
      position = this.#find(data);
    }
    // Keep delimiter.length - 1 bytes while discarding: a delimiter may be split across chunks.
    const keep = width - 1;
    if (!this.#discarding && data.length > this.#maxLineBytes + keep) {
      this.#discarding = true;
      events.push({ type: 'overlong', bytes: data.length });
    }
    this.#buffer = Buffer.from(this.#discarding ? data.subarray(Math.max(0, data.length - keep)) : data);
    return events;
  }

  /** The stream ended: reports an unterminated remainder and starts afresh. */
  end(): Extract<LineEvent, { type: 'incomplete' }>[] {
    const events: Extract<LineEvent, { type: 'incomplete' }>[] =
      !this.#discarding && this.#buffer.length > 0
        ? [{ type: 'incomplete', bytes: this.#buffer.length }]
        : [];
    this.#buffer = Buffer.alloc(0);
    this.#discarding = false;
    return events;
  }

  #find(data: Buffer): number {
    return this.#delimiter === undefined ? lineEnd(data) : data.indexOf(this.#delimiter);
  }

  #line(line: Buffer, events: Exclude<LineEvent, { type: 'incomplete' }>[]): void {
    if (this.#discarding) {
      this.#discarding = false;
    } else if (line.length > this.#maxLineBytes) {
      events.push({ type: 'overlong', bytes: line.length });
    } else {
      events.push({ type: 'line', line: Buffer.from(line) });
    }
  }
}
