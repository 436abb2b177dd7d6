import type { Socket } from 'node:net';
import type { DeviceReading } from '@attache/core';
import { isBlankLine } from '@attache/line-formats';
import { arrivedNow, type ReadingDelivery } from './delivery.js';
import { SocketSession } from './session.js';

/** The parts of a reading one line gives. */
export type LineReadingParts = Pick<DeviceReading, 'protocol' | 'fields' | 'markers' | 'deviceTime'>;

/** Longest line kept, bytes; a longer run is discarded as malformed up to the next line end. */
export const maxLineBytes = 8192;

/** Options of {@link LineSession}. */
export interface LineSessionOptions {
  /** Parses one line (without its end); throws `ATTACHE_MALFORMED`. */
  parse: (line: string) => LineReadingParts;
  delivery: ReadingDelivery;
}

/**
 * ASCII lines on one connection (CR, LF or CR LF; blank lines skipped): each line to the sink, in
 * order, up to 64 in flight before the socket is paused. Nothing is written back.
 */
export class LineSession extends SocketSession {
  readonly #options: LineSessionOptions;
  #rest = '';
  #discarding = false;

  constructor(socket: Socket, options: LineSessionOptions) {
    super(socket);
    this.#options = options;
  }

  protected onData(chunk: Buffer): void {
    const lines = (this.#rest + chunk.toString('latin1')).split(/[\r\n]/);
    this.#rest = lines.pop() ?? '';
    for (const line of lines) this.#line(line);
    if (this.#rest.length > maxLineBytes) {
      if (!this.#discarding) this.#options.delivery.malformed('line longer than 8 KiB', this.#rest.length);
      this.#discarding = true;
      this.#rest = '';
    }
  }

  protected override onEnd(): void {
    if (this.#rest.length > 0 && !this.#discarding) {
      this.#options.delivery.malformed('line cut off by the connection closing', this.#rest.length);
    }
    this.#rest = '';
  }

  #line(line: string): void {
    if (this.#discarding) {
      this.#discarding = false;
      return;
    }
    if (isBlankLine(line)) return;
    const { delivery, parse } = this.#options;
    const arrival = arrivedNow();
    let parts: LineReadingParts;
    try {
      parts = parse(line);
    } catch (err) {
      delivery.malformed(err instanceof Error ? err.message : String(err), line.length);
      return;
    }
    const raw = Buffer.from(line, 'latin1');
    this.replies.push(delivery.deliver({ ...parts, raw }, arrival).then(() => undefined));
  }
}
