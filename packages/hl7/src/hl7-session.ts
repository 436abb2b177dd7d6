import * as crypto from 'node:crypto';
import type {
  AttacheRecord,
  ByteLink,
  DeviceReading,
  Hl7MllpFormat,
  ProtocolDriver,
  ProtocolSession,
  SessionContext,
} from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';
import { type Hl7AckCode, type Hl7AckError, hl7AckFrame } from './hl7-ack.js';
import type { Hl7Message } from './hl7-parser.js';
import { type Hl7ReadingParts, interpretHl7 } from './hl7-reading.js';
import { MllpFramer } from './mllp-framer.js';

/**
 * SHA-256 of a message, hex: `crypto.hash` (Node 20.12 and later) makes no Hash object; the Node 20
 * releases before it have only `createHash`.
 */
const sha256Hex: (payload: Buffer) => string =
  typeof crypto.hash === 'function'
    ? (payload) => crypto.hash('sha256', payload, 'hex')
    : (payload) => crypto.createHash('sha256').update(payload).digest('hex');

/** ACKs waiting for their sink call before the link is paused (bounds memory per link). */
export const maxPendingAcks = 64;

/** Options of {@link Hl7Driver}. */
export interface Hl7DriverOptions {
  /** The device's `format`, with the schema's defaults applied. */
  format: Hl7MllpFormat;
  /** The record's `adapter` (the transport the device is on). */
  adapter: AttacheRecord['adapter'];
}

/** ACK control ids are unique per process: a prefix from the start time, then a counter. */
let ackCounter = 0;
const ackPrefix = `ATT${Date.now().toString(36).toUpperCase()}`;
function nextControlId(): string {
  ackCounter++;
  return `${ackPrefix}${ackCounter}`;
}

type Outcome = 'stored' | 'malformed' | 'refused';

const sinkErrors: Record<Exclude<Outcome, 'stored'>, [Hl7AckCode, Hl7AckError]> = {
  malformed: ['AE', { hl7Code: 207, reason: 'the message could not be normalized' }],
  refused: ['AR', { hl7Code: 207, reason: 'the gateway cannot store the message now; send it again' }],
};

/** HL7 v2 over MLLP for one device, on any byte link (TCP connection, serial port). */
export class Hl7Driver implements ProtocolDriver {
  readonly protocol = 'hl7-mllp';
  readonly #options: Hl7DriverOptions;

  constructor(options: Hl7DriverOptions) {
    this.#options = options;
  }

  open(link: ByteLink, context: SessionContext): ProtocolSession {
    return new Hl7Session(link, context, this.#options);
  }

  async close(): Promise<void> {}
}

/**
 * HL7 v2 over MLLP on one link: frames → messages → sink → one ACK per message, in order, AA only
 * once the sink resolved (AE: cannot be normalized, AR: cannot be stored now). An oversize frame
 * closes the link after the ACKs of the messages before it (the stream cannot be trusted past it).
 * Bytes outside a frame are junk: counted, never acknowledged.
 */
export class Hl7Session implements ProtocolSession {
  readonly #link: ByteLink;
  readonly #ctx: SessionContext;
  readonly #options: Hl7DriverOptions;
  readonly #framer: MllpFramer;
  /** The replies not yet written, in message order; one is written once it and those before it are known. */
  readonly #replies: { bytes: Buffer | undefined }[] = [];
  /** Resolves `drained()` callers once no reply is waiting. */
  #drainedWaiters: (() => void)[] = [];
  #paused = false;
  #closing = false;

  constructor(link: ByteLink, context: SessionContext, options: Hl7DriverOptions) {
    this.#link = link;
    this.#ctx = context;
    this.#options = options;
    this.#framer = new MllpFramer({ maxMessageBytes: options.format.maxMessageBytes });
  }

  receive(chunk: Buffer): void {
    // After an oversize frame nothing more is read: the link closes once the ACKs before it are out.
    if (this.#closing) return;
    const { report } = this.#ctx;
    for (const event of this.#framer.push(chunk)) {
      if (this.#closing) return;
      if (event.type === 'message') this.#message(event.payload);
      else if (event.type === 'junk') report.junk?.(event.bytes);
      else {
        report.frame();
        report.malformed(
          new GatewayError('ATTACHE_MALFORMED', 'frame larger than maxMessageBytes; connection closed'),
          event.bytes,
          'malformed message discarded',
        );
        this.#closing = true;
        this.#link.pause();
        void this.drained().then(() => this.#link.close());
      }
    }
  }

  end(): void {
    // After an oversize frame the rest of the stream was never read: not junk.
    if (this.#closing) return;
    for (const event of this.#framer.end()) {
      if (event.type === 'junk') this.#ctx.report.junk?.(event.bytes);
    }
  }

  drained(): Promise<void> {
    if (this.#replies.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainedWaiters.push(resolve));
  }

  #message(payload: Buffer): void {
    const { clock, report } = this.#ctx;
    const arrival = { receivedAt: clock.now(), monotonicMs: clock.monotonicMs() };
    const { versions, freeText } = this.#options.format;
    const result = interpretHl7(payload, { versions, freeText });
    const ack = (message: Hl7Message | undefined, code: Hl7AckCode, error?: Hl7AckError) =>
      hl7AckFrame(payload, { message, code, controlId: nextControlId(), ...(error ? { error } : {}) });
    if (result.kind === 'ignore') {
      report.log.info({ reason: result.reason, bytes: payload.length }, 'message not acknowledged');
      return;
    }
    report.frame();
    if (result.kind === 'reject') {
      const error = new GatewayError('ATTACHE_MALFORMED', result.error.reason);
      if (result.code === 'AE') report.malformed(error, payload.length, 'malformed message discarded');
      else report.refused(error);
      this.#reply(ack(result.message, result.code, result.error));
      return;
    }
    if (result.kind === 'readings') {
      this.#several(payload, result.readings, arrival, (code, error) => ack(result.message, code, error));
      return;
    }
    // A sender that never saw our ACK sends the same message again: stored once (see ReadingSink).
    const idempotencyKey = `hl7:${sha256Hex(payload)}`;
    const reading: DeviceReading = {
      deviceId: this.#ctx.deviceId,
      adapter: this.#options.adapter,
      ...arrival,
      ...result.reading,
      idempotencyKey,
    };
    const slot = this.#slot();
    let accept: Buffer | undefined;
    const answer = (outcome: Outcome): void => {
      if (outcome === 'stored') slot.bytes = accept ?? ack(result.message, 'AA');
      else {
        const [code, error] = sinkErrors[outcome];
        slot.bytes = ack(result.message, code, error);
      }
      this.#write();
    };
    this.#deliver(() => this.#ctx.sink(reading), 1, reading.raw.length, answer);
    // The AA is built once this turn's microtasks are done, i.e. once the sink has handed the
    // message's write to the disk, so that it is ready when the write is durable and only the
    // socket write is left then. It goes out only if the sink resolves (an AE or AR replaces it).
    queueMicrotask(() =>
      process.nextTick(() => {
        if (slot.bytes === undefined) accept = ack(result.message, 'AA');
      }),
    );
  }

  /**
   * The readings of a message with several patients: stored all or none (the sink's `all` when it
   * has one), then one ACK. Each carries the message's key and its position (`hl7:<sha256>:2`),
   * so a re-sent message is recognised part by part, even by a sink that stores them one by one.
   */
  #several(
    payload: Buffer,
    parts: Hl7ReadingParts[],
    arrival: Pick<DeviceReading, 'receivedAt' | 'monotonicMs'>,
    ack: (code: Hl7AckCode, error?: Hl7AckError) => Buffer,
  ): void {
    const { sink, deviceId } = this.#ctx;
    const key = `hl7:${sha256Hex(payload)}`;
    const readings = parts.map(
      (parts, i): DeviceReading => ({
        deviceId,
        adapter: this.#options.adapter,
        ...arrival,
        ...parts,
        idempotencyKey: `${key}:${i + 1}`,
      }),
    );
    const slot = this.#slot();
    const answer = (outcome: Outcome): void => {
      if (outcome === 'stored') slot.bytes = ack('AA');
      else slot.bytes = ack(...sinkErrors[outcome]);
      this.#write();
    };
    const store = () =>
      sink.all ? sink.all(readings) : Promise.all(readings.map((reading) => sink(reading)));
    this.#deliver(store, readings.length, payload.length, answer);
  }

  /**
   * Calls `store` (the sink) synchronously (so calls keep arrival order), then `answer` with the
   * outcome once it settles (a sink that throws at once answers in a later microtask, as one that
   * rejects); counts the `count` readings stored or refused, or the `bytes` malformed.
   */
  #deliver(
    store: () => Promise<unknown>,
    count: number,
    bytes: number,
    answer: (outcome: Outcome) => void,
  ): void {
    const { report } = this.#ctx;
    let call: Promise<unknown>;
    try {
      call = store();
    } catch (err) {
      const outcome = this.#failed(err, count, bytes);
      queueMicrotask(() => answer(outcome));
      return;
    }
    call.then(
      () => {
        report.stored(count);
        answer('stored');
      },
      (err: unknown) => answer(this.#failed(err, count, bytes)),
    );
  }

  /** Counts a sink failure: malformed (AE) or not stored now (AR). */
  #failed(err: unknown, count: number, bytes: number): Exclude<Outcome, 'stored'> {
    const { report } = this.#ctx;
    if (isGatewayError(err, 'ATTACHE_MALFORMED')) {
      report.malformed(err, bytes, 'malformed message discarded');
      return 'malformed';
    }
    report.refused(err, count);
    return 'refused';
  }

  /** A reply written as soon as it is known (see {@link #slot}). */
  #reply(bytes: Buffer): void {
    this.#slot().bytes = bytes;
    this.#write();
  }

  /**
   * A reply's place behind every reply queued before it, to be filled (then `#write()`) once it is
   * known; pauses the link while 64 are waiting.
   */
  #slot(): { bytes: Buffer | undefined } {
    const slot: { bytes: Buffer | undefined } = { bytes: undefined };
    this.#replies.push(slot);
    if (this.#replies.length >= maxPendingAcks && !this.#paused) {
      this.#paused = true;
      this.#link.pause();
    }
    return slot;
  }

  /** Writes the replies at the head of the queue that are ready; resumes the link below 64 waiting. */
  #write(): void {
    const replies = this.#replies;
    for (let head = replies[0]; head?.bytes !== undefined; head = replies[0]) {
      replies.shift();
      this.#link.write(head.bytes);
    }
    if (this.#paused && !this.#closing && replies.length < maxPendingAcks) {
      this.#paused = false;
      this.#link.resume();
    }
    if (replies.length === 0 && this.#drainedWaiters.length > 0) {
      const waiters = this.#drainedWaiters;
      this.#drainedWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
