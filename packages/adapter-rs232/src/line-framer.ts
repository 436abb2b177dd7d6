import { Transform, type TransformCallback } from 'node:stream';
import { monotonicMs } from '@attache/core';

/** One line out of a {@link LineFramer}, stamped when its delimiter arrived. */
export interface LineFrame {
  /** The line's bytes, without the delimiter. */
  line: Buffer;
  /** Wall-clock arrival time, ms since the epoch (`Date.now()`). */
  receivedAt: number;
  /** CLOCK_MONOTONIC arrival time, ms since boot (core's `monotonicMs()`). */
  monotonicMs: number;
}

/** Options of {@link LineFramer}. */
export interface LineFramerOptions {
  /** The line delimiter, e.g. `"\r\n"`. Not empty. */
  delimiter: string | Buffer;
  /** The longest line kept, in bytes without the delimiter; a longer run is discarded. Integer ≥ 1. */
  maxLineBytes: number;
  /** Lines buffered on the readable side before the framer applies backpressure. Default 64. */
  maxLines?: number;
}

/**
 * Splits a byte stream into lines, like serialport's parser-delimiter, but bounded: a run of more
 * than `maxLineBytes` bytes without a delimiter is dropped (event `overlong`, once per run, with the
 * bytes seen so far) and framing resumes after the next delimiter. The readable side is in object
 * mode: one {@link LineFrame} per line, stamped on arrival (lines may wait in the buffer before they
 * are read, so the consumer's clock would be late).
 *
 * At the end of the stream an unterminated remainder is not emitted as a line (event `incomplete`
 * with its length): a line cut off by a disconnect may end in a truncated value.
 */
export class LineFramer extends Transform {
  readonly #delimiter: Buffer;
  readonly #maxLineBytes: number;
  #buffer = Buffer.alloc(0);
  /** True while dropping an over-long run, until the next delimiter. */
  #discarding = false;

  constructor(options: LineFramerOptions) {
    super({ readableObjectMode: true, readableHighWaterMark: options?.maxLines ?? 64 });
    if (options?.delimiter === undefined || options.delimiter.length === 0) {
      throw new TypeError('"delimiter" must be a non-empty string or Buffer');
    }
    if (!Number.isInteger(options.maxLineBytes) || options.maxLineBytes < 1) {
      throw new TypeError('"maxLineBytes" must be an integer greater than 0');
    }
    this.#delimiter = Buffer.from(options.delimiter);
    this.#maxLineBytes = options.maxLineBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let data = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let position = data.indexOf(this.#delimiter);
    while (position !== -1) {
      this.#line(data.subarray(0, position));
      data = data.subarray(position + this.#delimiter.length);
      position = data.indexOf(this.#delimiter);
    }
    // Keep delimiter.length - 1 bytes while discarding: a delimiter may be split across chunks.
    const keep = this.#delimiter.length - 1;
    if (!this.#discarding && data.length > this.#maxLineBytes + keep) {
      this.#discarding = true;
      this.emit('overlong', data.length);
    }
    this.#buffer = Buffer.from(this.#discarding ? data.subarray(Math.max(0, data.length - keep)) : data);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#discarding && this.#buffer.length > 0) this.emit('incomplete', this.#buffer.length);
    this.#buffer = Buffer.alloc(0);
    this.#discarding = false;
    callback();
  }

  #line(line: Buffer): void {
    if (this.#discarding) {
      this.#discarding = false;
    } else if (line.length > this.#maxLineBytes) {
      this.emit('overlong', line.length);
    } else {
      const frame: LineFrame = {
        line: Buffer.from(line),
        receivedAt: Date.now(),
        monotonicMs: monotonicMs(),
      };
      this.push(frame);
    }
  }
}
