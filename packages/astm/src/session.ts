import { createHash } from 'node:crypto';
import type {
  AstmFormat,
  AttacheRecord,
  ByteLink,
  ClockTimer,
  DeviceReading,
  ProtocolDriver,
  ProtocolSession,
  ReadingSink,
  SessionContext,
} from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';
import { BusyLog } from './busy-log.js';
import { astmLocalTimestamp, buildNoInformationReply } from './host-query.js';
import { type AstmAction, AstmReceiver, type AstmReceiverEvent } from './low-level.js';
import { astmRawHeader, astmReadings } from './readings.js';
import { parseAstmMessage } from './records.js';
import { AstmReplySender } from './reply-sender.js';

/** How often the receiver and reply timers are checked, ms. */
export const astmTickMs = 250;
/** Bytes held while a message is being stored (the instrument waits for our ACK meanwhile). */
export const astmMaxHeldBytes = 65_536;

/** Options of {@link AstmDriver}. */
export interface AstmDriverOptions {
  /** The device's `format`, with the schema's defaults applied. */
  format: AstmFormat;
  /** The record's `adapter` (the transport the device is on). */
  adapter: AttacheRecord['adapter'];
}

/** ASTM E1381/E1394 for one device, on any byte link (serial port, TCP connection). */
export class AstmDriver implements ProtocolDriver {
  readonly protocol = 'astm';
  readonly #options: AstmDriverOptions;

  constructor(options: AstmDriverOptions) {
    this.#options = options;
  }

  open(link: ByteLink, context: SessionContext): ProtocolSession {
    return new AstmSession(link, context, this.#options);
  }

  async close(): Promise<void> {}
}

/** A message to store, stamped when its last frame arrived. */
interface Arrived {
  text: string;
  receivedAt: number;
  monotonicMs: number;
}

/**
 * One ASTM conversation: bytes → `AstmReceiver` (ACK/NAK written back) → message → readings → sink.
 * The frame completing a message is ACKed only once the sink resolved, NAKed when it rejected; the
 * bytes that arrive meanwhile are held, at most 64 KiB (the analyzer waits for our ACK: more is
 * discarded and counted malformed). Each reading carries an idempotency key (a hash of the message
 * text and the reading's index), so a message re-sent because the analyzer never saw our ACK is
 * stored once. The readings of one message (several orders or patients) go to the sink's `all`
 * when it has one: stored all or none, so a NAKed message leaves nothing behind. Host queries are answered "no information" after the instrument's EOT. One timer,
 * every 250 ms, runs the receiver timer and the reply's timers.
 */
export class AstmSession implements ProtocolSession {
  readonly #link: ByteLink;
  readonly #ctx: SessionContext;
  readonly #options: AstmDriverOptions;
  readonly #receiver: AstmReceiver;
  readonly #reply: AstmReplySender;
  readonly #busy = new BusyLog();
  #work: Promise<void> = Promise.resolve();
  #timer: ClockTimer | undefined;
  #storing = false;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #ended = false;

  constructor(link: ByteLink, context: SessionContext, options: AstmDriverOptions) {
    this.#link = link;
    this.#ctx = context;
    this.#options = options;
    const { clock, refusing } = context;
    this.#receiver = new AstmReceiver({
      receiverTimeoutMs: options.format.receiverTimeoutMs,
      maxMessageText: options.format.maxMessageBytes,
      canAccept: () => !refusing(),
      now: () => clock.monotonicMs(),
    });
    this.#reply = new AstmReplySender((bytes) => link.write(bytes), context.report.log);
    this.#arm();
  }

  receive(chunk: Buffer): void {
    if (this.#ended) return;
    const now = this.#ctx.clock.monotonicMs();
    const rest = this.#reply.active ? this.#reply.onData(chunk, now) : chunk;
    if (rest.length === 0) return;
    if (this.#storing) this.#hold(rest);
    else this.#run(this.#receiver.feed(rest, now));
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    // The analyzer re-sends what was cut off: it never got the ACK of the message's last frame.
    if (this.#receiver.state !== 'idle') {
      this.#ctx.report.log.warn(
        {},
        'ASTM transfer cut off by the port closing; the partial message was discarded',
      );
    }
  }

  drained(): Promise<void> {
    return this.#work;
  }

  #arm(): void {
    this.#timer = this.#ctx.clock.setTimeout(() => {
      this.#tick();
      if (!this.#ended) this.#arm();
    }, astmTickMs);
  }

  #tick(): void {
    const now = this.#ctx.clock.monotonicMs();
    this.#run(this.#receiver.tick(now));
    this.#reply.tick(now);
    if (!this.#storing && this.#receiver.state === 'idle') this.#reply.maybeStart(now);
  }

  #hold(chunk: Buffer): void {
    if (this.#heldBytes + chunk.length > astmMaxHeldBytes) {
      this.#ctx.report.malformed(
        new GatewayError('ATTACHE_MALFORMED', 'bytes while a message is being stored exceed 64 KiB'),
        chunk.length,
        'ASTM bytes discarded',
      );
      return;
    }
    // A copy: a view would keep the link's whole read buffer alive.
    this.#held.push(Buffer.from(chunk));
    this.#heldBytes += chunk.length;
  }

  #run(actions: AstmAction[]): void {
    for (const action of actions) {
      if (action.type === 'send') this.#link.write(action.bytes);
      else if (action.type === 'event') this.#event(action.event, action.reason);
      else this.#message(action.text, action.awaitingStore);
    }
  }

  #event(event: AstmReceiverEvent, reason: string | undefined): void {
    const { report } = this.#ctx;
    if (event === 'malformed-frame') {
      report.malformed(
        new GatewayError('ATTACHE_MALFORMED', reason ?? 'bad frame'),
        undefined,
        'ASTM frame refused',
      );
    } else if (event === 'timeout') {
      report.log.warn({}, 'ASTM transfer timed out (receiver timer); the partial message was discarded');
    } else if (event === 'aborted-message') {
      report.log.warn(
        {},
        'ASTM transfer ended right after a refused frame: the analyzer gave up on the message and keeps it; the part received was discarded',
      );
    } else if (event === 'duplicate-frame') {
      report.log.info({}, 'ASTM frame re-sent after a lost ACK; acknowledged again, not stored twice');
    } else if (event === 'transfer-end') {
      this.#reply.maybeStart(this.#ctx.clock.monotonicMs());
    } else if (event === 'busy') {
      this.#busy.refused(report.log);
    } else {
      this.#busy.accepted(report.log);
    }
  }

  #message(text: string, awaitingStore: boolean): void {
    const { clock, report } = this.#ctx;
    report.frame();
    const arrived: Arrived = { text, receivedAt: clock.now(), monotonicMs: clock.monotonicMs() };
    if (!awaitingStore) {
      // Already ACKed frame by frame (no L record): it cannot be refused any more; store it anyway.
      this.#work = this.#work.then(() => this.#store(arrived)).then(() => undefined);
      return;
    }
    this.#storing = true;
    this.#work = this.#work
      .then(() => this.#store(arrived))
      .then((stored) => {
        this.#storing = false;
        const held = Buffer.concat(this.#held);
        this.#held = [];
        this.#heldBytes = 0;
        if (this.#ended) return;
        this.#run(this.#receiver.acknowledge(stored, clock.monotonicMs()));
        if (held.length > 0) this.receive(held);
      });
  }

  /** Resolves true when every reading of the message is stored (now or before). Never rejects. */
  async #store(arrived: Arrived): Promise<boolean> {
    const { report, deviceId } = this.#ctx;
    let message: ReturnType<typeof parseAstmMessage>;
    try {
      message = parseAstmMessage(arrived.text);
    } catch (err) {
      report.malformed(err, arrived.text.length, 'malformed ASTM message refused');
      return false;
    }
    const key = createHash('sha256').update(arrived.text, 'latin1').digest('hex');
    const raw = astmRawHeader(arrived.text);
    const readings: DeviceReading[] = astmReadings(message, { comments: this.#options.format.comments }).map(
      (parts, i) => ({
        ...parts,
        idempotencyKey: `astm:${key}:${i}`,
        deviceId,
        adapter: this.#options.adapter,
        receivedAt: arrived.receivedAt,
        monotonicMs: arrived.monotonicMs,
        raw,
      }),
    );
    const stored = await this.#deliver(readings);
    if (stored && message.queries.length > 0 && this.#options.format.hostQueries === 'no-information') {
      this.#reply.queue(
        buildNoInformationReply({ timestamp: astmLocalTimestamp(new Date(this.#ctx.clock.now())) }),
      );
      if (this.#receiver.state === 'idle') this.#reply.maybeStart(this.#ctx.clock.monotonicMs());
    }
    return stored;
  }

  /** Hands the readings to the sink, in order; true when all are stored (now or before). */
  async #deliver(readings: DeviceReading[]): Promise<boolean> {
    const { report, sink } = this.#ctx;
    if (readings.length === 0)
      report.log.info({}, 'ASTM message without results or queries; nothing to store');
    if (readings.length > 1 && sink.all) return this.#deliverAll(sink.all, readings);
    const outcomes = await Promise.allSettled(readings.map((reading) => sink(reading)));
    report.stored(outcomes.filter((o) => o.status === 'fulfilled').length);
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    const [first] = failures;
    if (first === undefined) return true;
    if (failures.every((err) => isGatewayError(err, 'ATTACHE_MALFORMED'))) {
      report.malformed(first, undefined, 'ASTM message refused by the normalizer');
    } else report.refused(first, failures.length);
    return false;
  }

  /** The readings of one message stored all or none (several patients or orders); true when stored. */
  async #deliverAll(all: NonNullable<ReadingSink['all']>, readings: DeviceReading[]): Promise<boolean> {
    const { report } = this.#ctx;
    try {
      await all(readings);
    } catch (err) {
      if (isGatewayError(err, 'ATTACHE_MALFORMED')) {
        report.malformed(err, undefined, 'ASTM message refused by the normalizer');
      } else report.refused(err, readings.length);
      return false;
    }
    report.stored(readings.length);
    return true;
  }
}
