import type { DeviceField, DeviceReading } from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';
import { isBlankLine, parseKvLine, RegexLineParser } from '@attache/line-formats';
import { type LineFrame, LineFramer } from './line-framer.js';
import type { LineFormat, SerialLink, SerialSession, SessionContext } from './session.js';

/** Lines waiting for the sink before the port is paused. */
const maxQueuedLines = 64;
/**
 * Sink calls in flight at once. Several in flight let the cache commit a burst of lines in one
 * synced write (group commit) instead of one fsync per line.
 */
const maxInFlight = 64;

interface ParsedLine {
  fields: DeviceField[];
  markers?: string[];
  deviceTime?: string;
}

/**
 * Reads `kv-line` and `regex-line` devices: bytes → lines (`LineFramer`) → parsed fields → sink,
 * in arrival order across reconnects, with up to 64 sink calls in flight. Blank lines are skipped.
 */
export class LineSession implements SerialSession {
  readonly #ctx: SessionContext;
  readonly #format: LineFormat;
  readonly #parse: (line: string) => ParsedLine;
  /** The consumer of the current framer, chained after the previous one so that order holds across reconnects. */
  #pump: Promise<void> = Promise.resolve();

  /** @throws TypeError when a `regex-line` pattern is not a valid regular expression. */
  constructor(ctx: SessionContext, format: LineFormat) {
    this.#ctx = ctx;
    this.#format = format;
    if (format.kind === 'kv-line') this.#parse = (line) => parseKvLine(line, format);
    else {
      const parser = new RegexLineParser(format);
      this.#parse = (line) => parser.parse(line);
    }
  }

  attach(port: SerialLink): void {
    const { delimiter, maxLineBytes } = this.#ctx.device.port;
    const framer = new LineFramer({ delimiter, maxLineBytes, maxLines: maxQueuedLines });
    framer.on('overlong', (bytes: number) => this.#discarded('line longer than maxLineBytes', bytes));
    framer.on('incomplete', (bytes: number) => this.#discarded('line cut off by the port closing', bytes));
    // pipe() pauses the port when the framer's buffer is full (maxQueuedLines lines waiting).
    port.pipe(framer);
    const previous = this.#pump;
    this.#pump = previous.then(() => this.#consume(framer));
  }

  drained(): Promise<void> {
    return this.#pump;
  }

  async close(): Promise<void> {}

  /** Calls the sink for each line in arrival order, with at most `maxInFlight` calls outstanding. */
  async #consume(framer: LineFramer): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for await (const frame of framer) {
      // #deliver calls the sink synchronously (before its first await), so calls keep line order.
      const delivery: Promise<void> = this.#deliver(frame as LineFrame).finally(() =>
        inFlight.delete(delivery),
      );
      inFlight.add(delivery);
      if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  async #deliver(frame: LineFrame): Promise<void> {
    const { report, sink, device } = this.#ctx;
    const line = frame.line.toString('latin1');
    // Blank lines between readings are no frames: not counted, not malformed.
    if (isBlankLine(line)) return;
    report.counts.frames++;
    let reading: DeviceReading;
    try {
      const { fields, markers = [], deviceTime } = this.#parse(line);
      reading = {
        deviceId: device.id,
        adapter: 'rs232',
        protocol: this.#format.kind,
        receivedAt: frame.receivedAt,
        monotonicMs: frame.monotonicMs,
        fields,
        markers,
        ...(deviceTime === undefined ? {} : { deviceTime }),
        raw: frame.line,
      };
    } catch (err) {
      report.malformed(err, frame.line.length);
      return;
    }
    try {
      await sink(reading);
      report.counts.stored++;
    } catch (err) {
      if (isGatewayError(err, 'ATTACHE_MALFORMED')) report.malformed(err, frame.line.length);
      else report.refused(err);
    }
  }

  /** A framing failure: counts as a frame and as malformed. */
  #discarded(reason: string, bytes: number): void {
    this.#ctx.report.counts.frames++;
    this.#ctx.report.malformed(new GatewayError('ATTACHE_MALFORMED', reason), bytes);
  }
}
