import type {
  ByteLink,
  ClockTimer,
  Logger,
  ProtocolDriver,
  ProtocolSession,
  SessionContext,
} from '@attache/core';
import { isGatewayError } from '@attache/core';
import type { UpStore } from './up-store.js';

/** Options of {@link CaptureDriver}. */
export interface CaptureDriverOptions {
  store: UpStore;
  /**
   * The device's own protocol: it receives every byte as before, and the capture runs alongside.
   * Omitted: the port only captures files ("instead").
   */
  inner?: ProtocolDriver;
  /** A line matching this starts a file (the line is its first). Keep it linear (no nested quantifiers). */
  start: RegExp;
  /** A line matching this ends the file (the line is its last). */
  end?: RegExp;
  /** A file also ends after this many ms without bytes (default 5000; 0: only `end` or `maxBytes`). */
  idleMs?: number;
  /** Most bytes of one file; it ends there (default 4 MiB). */
  maxBytes?: number;
}

/** Bytes of one line looked at by the patterns: a longer line is matched on its first 4 KiB. */
const maxLineBytes = 4096;

/**
 * A {@link ProtocolDriver} that turns a log or report the device prints on its port into a file of
 * the up store: from a line matching `start` to a line matching `end`, an idle gap or `maxBytes`,
 * whichever comes first. It wraps the device's driver (every byte still reaches it) or replaces it.
 * The bytes are kept as they came; the patterns only look at lines (split at LF) as Latin-1 text,
 * and each byte is looked at once, so the work is linear in the input.
 */
export class CaptureDriver implements ProtocolDriver {
  readonly protocol: string;
  readonly #options: CaptureDriverOptions;

  constructor(options: CaptureDriverOptions) {
    if (!(options?.start instanceof RegExp)) throw new TypeError('"start" must be a RegExp');
    const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
      throw new TypeError('"maxBytes" must be an integer >= 1');
    // A global or sticky pattern keeps state between tests: use a plain copy.
    const plain = (re: RegExp) => new RegExp(re.source, re.flags.replace(/[gy]/g, ''));
    this.#options = {
      ...options,
      start: plain(options.start),
      ...(options.end ? { end: plain(options.end) } : {}),
    };
    this.protocol = options.inner?.protocol ?? 'capture';
  }

  open(link: ByteLink, context: SessionContext): ProtocolSession {
    const inner = this.#options.inner?.open(link, context);
    return new CaptureSession(this.#options, context, link.name, inner);
  }

  async close(): Promise<void> {
    await this.#options.inner?.close();
  }
}

class CaptureSession implements ProtocolSession {
  readonly #options: CaptureDriverOptions;
  readonly #context: SessionContext;
  readonly #inner: ProtocolSession | undefined;
  readonly #log: Logger;
  readonly #linkName: string;
  /** The current line's first bytes (for the patterns). */
  #line: Buffer[] = [];
  #lineBytes = 0;
  /** The file being captured; undefined when waiting for `start`. */
  #file: Buffer[] | undefined;
  #fileBytes = 0;
  #idle: ClockTimer | undefined;
  readonly #pending = new Set<Promise<void>>();

  constructor(
    options: CaptureDriverOptions,
    context: SessionContext,
    linkName: string,
    inner: ProtocolSession | undefined,
  ) {
    this.#options = options;
    this.#context = context;
    this.#inner = inner;
    this.#linkName = linkName;
    this.#log = context.report.log.child({ module: 'capture' });
  }

  receive(chunk: Buffer): void {
    this.#inner?.receive(chunk);
    let from = 0;
    while (from < chunk.length) {
      const lf = chunk.indexOf(0x0a, from);
      const to = lf === -1 ? chunk.length : lf + 1;
      this.#bytes(chunk.subarray(from, to), lf !== -1);
      from = to;
    }
    if (this.#file) this.#armIdle();
  }

  /** Bytes of one line (`complete`: they end with its LF). */
  #bytes(bytes: Buffer, complete: boolean): void {
    if (this.#lineBytes < maxLineBytes) {
      const kept = bytes.subarray(0, maxLineBytes - this.#lineBytes);
      this.#line.push(kept);
      this.#lineBytes += kept.length;
    }
    if (this.#file) this.#append(bytes);
    if (!complete) return;
    const raw = Buffer.concat(this.#line);
    const line = raw.toString('latin1').replace(/\r?\n$/, '');
    this.#line = [];
    this.#lineBytes = 0;
    if (!this.#file) {
      if (this.#options.start.test(line)) {
        // The file begins with the start line as it came (its first 4 KiB).
        this.#file = [];
        this.#fileBytes = 0;
        this.#append(raw);
        this.#log.info('file capture started');
      }
    } else if (this.#options.end?.test(line)) {
      this.#finish('end');
    }
  }

  #append(bytes: Buffer): void {
    const file = this.#file as Buffer[];
    const maxBytes = this.#options.maxBytes ?? 4 * 1024 * 1024;
    const room = maxBytes - this.#fileBytes;
    file.push(bytes.subarray(0, room));
    this.#fileBytes += Math.min(room, bytes.length);
    if (this.#fileBytes >= maxBytes) this.#finish('max-bytes');
  }

  #armIdle(): void {
    const idleMs = this.#options.idleMs ?? 5000;
    this.#idle?.cancel();
    if (idleMs > 0) this.#idle = this.#context.clock.setTimeout(() => this.#finish('idle'), idleMs);
  }

  #finish(reason: 'end' | 'idle' | 'max-bytes' | 'link-closed'): void {
    this.#idle?.cancel();
    this.#idle = undefined;
    const file = this.#file;
    this.#file = undefined;
    if (!file) return;
    const content = Buffer.concat(file);
    this.#fileBytes = 0;
    const at = new Date(this.#context.clock.now()).toISOString();
    const storing = this.#options.store
      .capture(content, {
        source: `serial:${this.#linkName}`,
        deviceId: this.#context.deviceId,
        name: `serial-${at.replace(/[:.]/g, '-')}.log`,
        capturedAt: at,
      })
      .then(
        (result) => this.#log.info({ bytes: content.length, reason, stored: result.stored }, 'file captured'),
        (err: unknown) =>
          this.#log.warn(
            { bytes: content.length, errorCode: isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL' },
            'captured file not stored',
          ),
      );
    this.#pending.add(storing);
    void storing.finally(() => this.#pending.delete(storing));
  }

  end(): void {
    this.#inner?.end();
    // A log cut off by an unplugged cable is still worth keeping.
    this.#finish('link-closed');
  }

  async drained(): Promise<void> {
    await Promise.all([this.#inner?.drained(), ...this.#pending]);
  }
}
