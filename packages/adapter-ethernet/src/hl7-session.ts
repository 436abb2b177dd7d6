import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Hl7MllpFormat, Logger } from '@attache/core';
import { GatewayError } from '@attache/core';
import { arrivedNow, type DeliveryOutcome, type ReadingDelivery } from './delivery.js';
import { type Hl7AckCode, type Hl7AckError, hl7AckFrame } from './hl7-ack.js';
import type { Hl7Message } from './hl7-parser.js';
import { interpretHl7 } from './hl7-reading.js';
import { MllpFramer } from './mllp-framer.js';
import { SocketSession } from './session.js';

/** Options of {@link Hl7Session}. */
export interface Hl7SessionOptions {
  format: Hl7MllpFormat;
  delivery: ReadingDelivery;
  log: Logger;
  /** A new MSH-10 for each ACK. */
  nextControlId: () => string;
}

const sinkErrors: Record<Exclude<DeliveryOutcome, 'stored'>, [Hl7AckCode, Hl7AckError]> = {
  malformed: ['AE', { hl7Code: 207, reason: 'the message could not be normalized' }],
  refused: ['AR', { hl7Code: 207, reason: 'the gateway cannot store the message now; send it again' }],
};

/**
 * HL7 v2 over MLLP on one connection: frames → messages → sink → one ACK per message, in order,
 * AA only once the sink resolved. An oversize frame closes the connection after the ACKs of the
 * messages before it.
 */
export class Hl7Session extends SocketSession {
  readonly #framer: MllpFramer;
  readonly #options: Hl7SessionOptions;

  constructor(socket: Socket, options: Hl7SessionOptions) {
    super(socket);
    this.#options = options;
    this.#framer = new MllpFramer({ maxMessageBytes: options.format.maxMessageBytes });
  }

  protected onData(chunk: Buffer): void {
    for (const event of this.#framer.push(chunk)) {
      if (this.closing) return;
      if (event.type === 'message') this.#message(event.payload);
      else if (event.type === 'junk') this.#options.delivery.junk(event.bytes);
      else {
        this.#options.delivery.malformed('frame larger than maxMessageBytes; connection closed', event.bytes);
        void this.close();
      }
    }
  }

  protected override onEnd(): void {
    for (const event of this.#framer.end()) {
      if (event.type === 'junk') this.#options.delivery.junk(event.bytes);
    }
  }

  #message(payload: Buffer): void {
    const arrival = arrivedNow();
    const { delivery, log } = this.#options;
    const result = interpretHl7(payload, { versions: this.#options.format.versions });
    const ack = (message: Hl7Message | undefined, code: Hl7AckCode, error?: Hl7AckError) =>
      hl7AckFrame(payload, {
        message,
        code,
        controlId: this.#options.nextControlId(),
        ...(error ? { error } : {}),
      });
    if (result.kind === 'ignore') {
      log.info({ reason: result.reason, bytes: payload.length }, 'message not acknowledged');
      return;
    }
    if (result.kind === 'reject') {
      if (result.code === 'AE') delivery.malformed(result.error.reason, payload.length);
      else delivery.refused(new GatewayError('ATTACHE_MALFORMED', result.error.reason), true);
      this.replies.push(Promise.resolve(ack(result.message, result.code, result.error)));
      return;
    }
    // A sender that never saw our ACK sends the same message again: stored once (see ReadingSink).
    const idempotencyKey = `hl7:${createHash('sha256').update(payload).digest('hex')}`;
    const stored = delivery.deliver({ ...result.reading, idempotencyKey }, arrival);
    this.replies.push(
      stored.then((outcome) => {
        if (outcome === 'stored') return ack(result.message, 'AA');
        const [code, error] = sinkErrors[outcome];
        return ack(result.message, code, error);
      }),
    );
  }
}
