import type {
  AttacheRecord,
  ByteLink,
  DeviceField,
  DeviceReading,
  KvLineFormat,
  ProtocolDriver,
  ProtocolSession,
  ReadingSink,
  RegexLineFormat,
  SessionContext,
} from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';
import { isBlankLine } from './blank-line.js';
import { parseKvLine } from './kv-line.js';
import { LineFramer } from './line-framer.js';
import { RegexLineParser } from './regex-line.js';

/**
 * Sink calls in flight at once before the link is paused. Several in flight let the cache commit a
 * burst of lines in one synced write (group commit) instead of one fsync per line.
 */
export const maxLinesInFlight = 64;

/** A line-oriented format. */
export type LineFormat = KvLineFormat | RegexLineFormat;

/** Options of {@link LineDriver}. */
export interface LineDriverOptions {
  /** The device's `format`, with the schema's defaults applied. */
  format: LineFormat;
  /** The record's `adapter` (the transport the device is on). */
  adapter: AttacheRecord['adapter'];
  /** The line delimiter (`"\r\n"`); default any line end (CR, LF or CR LF). */
  delimiter?: string;
  /** The longest line kept, bytes; a longer run is discarded as malformed up to the next delimiter. */
  maxLineBytes: number;
}

/** Calls the sink now (calls keep line order); a synchronous throw becomes a rejection. */
function call(sink: ReadingSink, reading: DeviceReading): Promise<void> {
  try {
    return sink(reading);
  } catch (err) {
    return Promise.reject(err);
  }
}

interface ParsedLine {
  fields: DeviceField[];
  markers?: string[];
  deviceTime?: string;
}

/** `kv-line` and `regex-line` devices, on any byte link. Nothing is written back to the device. */
export class LineDriver implements ProtocolDriver {
  readonly protocol: LineFormat['kind'];
  readonly #options: LineDriverOptions;
  readonly #parse: (line: string) => ParsedLine;

  /** @throws GatewayError `ATTACHE_CONFIG_INVALID` when a `regex-line` pattern is not a valid regular expression. */
  constructor(options: LineDriverOptions) {
    const { format } = options;
    this.#options = options;
    this.protocol = format.kind;
    if (format.kind === 'kv-line') this.#parse = (line) => parseKvLine(line, format);
    else {
      const parser = new RegexLineParser(format);
      this.#parse = (line) => parser.parse(line);
    }
  }

  open(link: ByteLink, context: SessionContext): ProtocolSession {
    const { delimiter, maxLineBytes } = this.#options;
    const framer = new LineFramer({ ...(delimiter === undefined ? {} : { delimiter }), maxLineBytes });
    return new LineSession(link, context, framer, (line) => this.#reading(line, context));
  }

  async close(): Promise<void> {}

  /** The reading of one line. @throws GatewayError `ATTACHE_MALFORMED`. */
  #reading(line: Buffer, context: SessionContext): DeviceReading {
    const { fields, markers = [], deviceTime } = this.#parse(line.toString('latin1'));
    return {
      deviceId: context.deviceId,
      adapter: this.#options.adapter,
      protocol: this.protocol,
      receivedAt: context.clock.now(),
      monotonicMs: context.clock.monotonicMs(),
      fields,
      markers,
      ...(deviceTime === undefined ? {} : { deviceTime }),
      raw: line,
    };
  }
}

/**
 * One link's lines: bytes → lines (`LineFramer`) → parsed fields → sink, in arrival order, with up
 * to 64 sink calls in flight (the link is paused beyond). Blank lines are skipped; a line that is
 * too long, cut off by the link closing, or does not parse is counted as a frame and as malformed.
 */
export class LineSession implements ProtocolSession {
  readonly #link: ByteLink;
  readonly #ctx: SessionContext;
  readonly #framer: LineFramer;
  readonly #reading: (line: Buffer) => DeviceReading;
  readonly #inFlight = new Set<Promise<void>>();
  /** Parsed lines not yet handed to the sink, oldest first. */
  readonly #waiting: { reading: DeviceReading; bytes: number }[] = [];
  #paused = false;

  constructor(
    link: ByteLink,
    context: SessionContext,
    framer: LineFramer,
    reading: (line: Buffer) => DeviceReading,
  ) {
    this.#link = link;
    this.#ctx = context;
    this.#framer = framer;
    this.#reading = reading;
  }

  receive(chunk: Buffer): void {
    for (const event of this.#framer.push(chunk)) {
      if (event.type === 'line') this.#line(event.line);
      else this.#discarded('line longer than maxLineBytes', event.bytes);
    }
  }

  end(): void {
    for (const event of this.#framer.end()) this.#discarded('line cut off by the link closing', event.bytes);
  }

  async drained(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
  }

  #line(line: Buffer): void {
    const { report } = this.#ctx;
    // Blank lines between readings are no frames: not counted, not malformed.
    if (isBlankLine(line.toString('latin1'))) return;
    report.frame();
    let reading: DeviceReading;
    try {
      reading = this.#reading(line);
    } catch (err) {
      report.malformed(err, line.length, 'malformed line discarded');
      return;
    }
    this.#waiting.push({ reading, bytes: line.length });
    this.#deliver();
  }

  /** Calls the sink for waiting lines, oldest first, while fewer than 64 calls are in flight. */
  #deliver(): void {
    const { report, sink } = this.#ctx;
    while (this.#inFlight.size < maxLinesInFlight) {
      const next = this.#waiting.shift();
      if (next === undefined) break;
      const { reading, bytes } = next;
      const delivery: Promise<void> = call(sink, reading).then(
        () => report.stored(),
        (err: unknown) => {
          if (isGatewayError(err, 'ATTACHE_MALFORMED'))
            report.malformed(err, bytes, 'malformed line discarded');
          else report.refused(err);
        },
      );
      const tracked = delivery.finally(() => {
        this.#inFlight.delete(tracked);
        this.#deliver();
      });
      this.#inFlight.add(tracked);
    }
    // Lines wait here (at most one read's worth) while the link is paused.
    const full = this.#inFlight.size >= maxLinesInFlight;
    if (full && !this.#paused) this.#link.pause();
    else if (!full && this.#paused) this.#link.resume();
    this.#paused = full;
  }

  /** A framing failure: counts as a frame and as malformed. */
  #discarded(reason: string, bytes: number): void {
    this.#ctx.report.frame();
    this.#ctx.report.malformed(
      new GatewayError('ATTACHE_MALFORMED', reason),
      bytes,
      'malformed line discarded',
    );
  }
}
