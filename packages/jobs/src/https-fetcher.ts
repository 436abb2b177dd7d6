import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import type { PartialFile } from '@attache/cache';
import { GatewayError, type Logger, nullLogger } from '@attache/core';
import { rejected } from './job-status-error.js';

/** Options of {@link HttpsFetcher}. */
export interface HttpsFetcherOptions {
  /** Extra trusted CA certificates (PEM); default: Node's bundled roots (which include Amazon's). */
  ca?: string | Buffer;
  /** A download that receives nothing for this long is cut, in ms (default 30,000). */
  idleTimeoutMs?: number;
  /** Bytes gathered before each durable (fsynced) write to the partial file (default 256 KiB). */
  flushBytes?: number;
  logger?: Logger;
}

/** Called after each durable write with the bytes held so far. */
export type ProgressListener = (received: number) => void;

/**
 * Downloads over HTTPS into a {@link PartialFile} of the file store, resuming with a `Range`
 * request from the bytes already held: a download cut by the end of a window, a network failure
 * or a crash continues where it stopped.
 */
export class HttpsFetcher {
  readonly #ca: string | Buffer | undefined;
  readonly #idleTimeoutMs: number;
  readonly #flushBytes: number;
  readonly #log: Logger;

  /** Keeps the options; no I/O. */
  constructor(options: HttpsFetcherOptions = {}) {
    this.#ca = options.ca;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#flushBytes = options.flushBytes ?? 256 * 1024;
    this.#log = (options.logger ?? nullLogger).child({ module: 'https-fetcher' });
  }

  /**
   * Fetches `url` into `partial` until it holds `partial.size` bytes. Rejects:
   * JobStatusError REJECTED when the server's complete answer is shorter or longer than announced
   * (the partial is discarded); ATTACHE_CANCELED when `signal` aborts; ATTACHE_UPLINK_PUBLISH
   * when the download fails on the network or with an HTTP error (bytes received stay held).
   */
  async fetchInto(
    url: string,
    partial: PartialFile,
    signal?: AbortSignal,
    onProgress?: ProgressListener,
  ): Promise<void> {
    if (partial.received >= partial.size) return;
    const res = await this.#get(url, partial.received, signal);
    if (res.statusCode === 416) {
      res.resume();
      const held = partial.received;
      await partial.discard();
      throw rejected('ATTACHE_MALFORMED', `artifact at the URL is shorter than the ${held} bytes held`);
    }
    if (res.statusCode === 200 && partial.received > 0)
      await partial.discard(); // no Range support
    else if (res.statusCode !== 200 && res.statusCode !== 206) {
      res.resume();
      throw new GatewayError('ATTACHE_UPLINK_PUBLISH', `download failed: HTTP ${res.statusCode}`);
    }
    const from = partial.received;
    await this.#receive(res, partial, onProgress);
    this.#log.info({ from, received: partial.received, size: partial.size }, 'download finished');
    if (partial.received < partial.size) {
      const held = partial.received;
      await partial.discard();
      throw rejected(
        'ATTACHE_MALFORMED',
        `truncated artifact: the server sent ${held} of ${partial.size} bytes`,
      );
    }
  }

  #get(url: string, offset: number, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const options = {
        headers,
        ca: this.#ca,
        signal,
        timeout: this.#idleTimeoutMs,
        minVersion: 'TLSv1.2' as const,
      };
      const req = request(url, options, resolve);
      req.on('timeout', () => req.destroy(new Error(`no data for ${this.#idleTimeoutMs} ms`)));
      req.on('error', (err) => reject(this.#networkError(err, signal, offset)));
      req.end();
    });
  }

  /** Streams the body into the partial, flushing every `flushBytes`; the held bytes survive any failure. */
  async #receive(res: IncomingMessage, partial: PartialFile, onProgress?: ProgressListener): Promise<void> {
    let buffered: Buffer[] = [];
    let bufferedBytes = 0;
    const flush = async (): Promise<void> => {
      if (bufferedBytes === 0) return;
      const chunk = Buffer.concat(buffered);
      buffered = [];
      bufferedBytes = 0;
      await this.#write(partial, chunk);
      onProgress?.(partial.received);
    };
    try {
      for await (const chunk of res) {
        buffered.push(chunk as Buffer);
        bufferedBytes += (chunk as Buffer).length;
        if (bufferedBytes >= this.#flushBytes) await flush();
      }
    } catch (err) {
      await flush();
      throw this.#networkError(err, undefined, partial.received);
    }
    await flush();
    if (!res.complete) {
      throw new GatewayError(
        'ATTACHE_UPLINK_PUBLISH',
        `download interrupted at ${partial.received} of ${partial.size} bytes`,
      );
    }
  }

  async #write(partial: PartialFile, chunk: Buffer): Promise<void> {
    try {
      await partial.write(chunk);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'ATTACHE_MALFORMED') {
        await partial.discard();
        throw rejected(
          'ATTACHE_MALFORMED',
          `artifact is longer than the announced ${partial.size} bytes`,
          err,
        );
      }
      throw err;
    }
  }

  #networkError(err: unknown, signal: AbortSignal | undefined, received: number): GatewayError {
    if (err instanceof GatewayError) return err;
    if (signal?.aborted || (err as Error).name === 'AbortError') {
      return new GatewayError('ATTACHE_CANCELED', `download stopped at ${received} bytes: the window ended`, {
        cause: err,
      });
    }
    const what = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return new GatewayError('ATTACHE_UPLINK_PUBLISH', `download interrupted at ${received} bytes (${what})`, {
      cause: err,
    });
  }
}
