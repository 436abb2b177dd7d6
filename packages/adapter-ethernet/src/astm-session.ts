import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  type AstmAction,
  AstmReceiver,
  AstmReplySender,
  astmLocalTimestamp,
  astmRawHeader,
  astmReadings,
  BusyLog,
  buildNoInformationReply,
  parseAstmMessage,
} from '@attache/astm';
import { type AstmFormat, type Logger, monotonicMs, type SinkRefusing } from '@attache/core';
import { arrivedNow, type ReadingDelivery } from './delivery.js';
import { SocketSession } from './session.js';

/** Options of {@link AstmSession}. */
export interface AstmSessionOptions {
  format: AstmFormat;
  delivery: ReadingDelivery;
  log: Logger;
  /** True while the sink would refuse readings: ENQ is then answered busy. */
  refusing: SinkRefusing;
}

/** How often the receiver timer is checked, ms. */
const tickMs = 1000;

/**
 * ASTM E1381/E1394 on one connection: the same `AstmReceiver` as on RS-232, its ACK/NAK written on
 * the socket. The final frame of a message is ACKed only once the sink resolved; a message that
 * cannot be parsed, is too large, or cannot be stored is NAKed, so the analyzer keeps it (and, after
 * its retries, reports the failure to its operator instead of losing the result silently). Host
 * queries are answered "no information" in a transfer of the gateway's own after the instrument's
 * EOT (the same `AstmReplySender` as on RS-232).
 */
export class AstmSession extends SocketSession {
  readonly #receiver: AstmReceiver;
  readonly #reply: AstmReplySender;
  readonly #options: AstmSessionOptions;
  readonly #timer: NodeJS.Timeout;
  readonly #busy = new BusyLog();

  constructor(socket: Socket, options: AstmSessionOptions) {
    super(socket);
    this.#options = options;
    this.#receiver = new AstmReceiver({
      receiverTimeoutMs: options.format.receiverTimeoutMs,
      maxMessageText: options.format.maxMessageBytes,
      canAccept: () => !options.refusing(),
    });
    this.#reply = new AstmReplySender((bytes) => {
      if (!this.socket.destroyed) this.socket.write(bytes);
    }, options.log);
    this.#timer = setInterval(() => this.#tick(), tickMs);
  }

  protected onData(chunk: Buffer): void {
    const now = monotonicMs();
    const rest = this.#reply.active ? this.#reply.onData(chunk, now) : chunk;
    if (rest.length > 0) this.#run(this.#receiver.feed(rest, now));
  }

  #tick(): void {
    const now = monotonicMs();
    this.#run(this.#receiver.tick(now));
    this.#reply.tick(now);
    this.#startReply(now);
  }

  /** Starts a queued reply once the instrument's transfer is over. */
  #startReply(now: number): void {
    if (this.#receiver.state === 'idle') this.#reply.maybeStart(now);
  }

  protected override onClose(): void {
    clearInterval(this.#timer);
  }

  #run(actions: AstmAction[]): void {
    for (const action of actions) {
      if (action.type === 'send') {
        if (!this.socket.destroyed) this.socket.write(action.bytes);
      } else if (action.type === 'message') {
        this.#message(action.text, action.awaitingStore);
      } else if (action.event === 'transfer-end') {
        this.#startReply(monotonicMs());
      } else if (action.event === 'busy') {
        this.#busy.refused(this.#options.log);
      } else if (action.event === 'transfer-start') {
        this.#busy.accepted(this.#options.log);
      } else if (action.event === 'malformed-frame' || action.event === 'timeout') {
        this.#options.log.warn({ event: action.event, reason: action.reason }, 'ASTM frame refused');
      }
    }
  }

  #message(text: string, awaitingStore: boolean): void {
    const { delivery, format } = this.#options;
    const arrival = arrivedNow();
    const bytes = Buffer.byteLength(text, 'latin1');
    let outcome: Promise<boolean>;
    if (bytes > format.maxMessageBytes) {
      delivery.malformed('message larger than maxMessageBytes', bytes);
      outcome = Promise.resolve(false);
    } else {
      outcome = this.#deliver(text, arrival);
    }
    if (!awaitingStore) return;
    // The receiver holds every byte that follows until acknowledge(): one message at a time.
    this.replies.push(
      outcome.then((stored) => {
        if (!this.socket.destroyed) this.#run(this.#receiver.acknowledge(stored));
        return undefined;
      }),
    );
  }

  /**
   * One reading per order (see @attache/astm `astmReadings`), delivered in order; true when all are
   * stored. `raw` is the H record only (`astmRawHeader`).
   */
  async #deliver(text: string, arrival: ReturnType<typeof arrivedNow>): Promise<boolean> {
    const { delivery, format } = this.#options;
    let message: ReturnType<typeof parseAstmMessage>;
    try {
      message = parseAstmMessage(text);
    } catch (err) {
      delivery.malformed(err instanceof Error ? err.message : String(err), text.length);
      return false;
    }
    const readings = astmReadings(message, { comments: format.comments });
    const raw = astmRawHeader(text);
    const key = createHash('sha256').update(text, 'latin1').digest('hex');
    const outcomes = readings.map((parts, i) =>
      delivery.deliver({ ...parts, raw, idempotencyKey: `astm:${key}:${i}` }, arrival),
    );
    const stored = (await Promise.all(outcomes)).every((outcome) => outcome === 'stored');
    if (stored && message.queries.length > 0 && format.hostQueries === 'no-information') {
      this.#reply.queue(buildNoInformationReply({ timestamp: astmLocalTimestamp() }));
      this.#startReply(monotonicMs());
    }
    return stored;
  }
}
