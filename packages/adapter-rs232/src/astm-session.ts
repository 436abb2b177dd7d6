import { createHash } from 'node:crypto';
import {
  type AstmAction,
  type AstmMessage,
  AstmReceiver,
  AstmReplySender,
  astmLocalTimestamp,
  astmRawHeader,
  astmReadings,
  BusyLog,
  buildNoInformationReply,
  parseAstmMessage,
} from '@attache/astm';
import type { AstmFormat, DeviceReading } from '@attache/core';
import { GatewayError, isGatewayError, monotonicMs } from '@attache/core';
import type { SerialLink, SerialSession, SessionContext } from './session.js';

/** How often the receiver and reply timers are checked, ms. */
const tickMs = 250;
/** Bytes held while a message is being stored (the instrument waits for our ACK meanwhile). */
const maxHeldBytes = 65_536;
const STX = 0x02;

/** One opened port with its own E1381 state. */
interface Link {
  port: SerialLink;
  receiver: AstmReceiver;
  reply: AstmReplySender;
  storing: boolean;
  held: Buffer[];
  heldBytes: number;
}

/** A message to store, stamped when its last frame arrived. */
interface Arrived {
  text: string;
  receivedAt: number;
  monotonicMs: number;
}

/**
 * Reads an ASTM E1381/E1394 analyzer: bytes → `AstmReceiver` (ACK/NAK written back) → message →
 * readings → sink; the frame completing a message is ACKed only once the sink resolved, NAKed when
 * it rejected. Each reading carries an idempotency key (a hash of the message text and the reading's
 * index), so a message re-sent because the analyzer never saw our ACK is stored once. Host queries are answered "no information" after the instrument's EOT.
 */
export class AstmSession implements SerialSession {
  readonly #ctx: SessionContext;
  readonly #format: AstmFormat;
  #link: Link | undefined;
  readonly #busy = new BusyLog();
  #work: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(ctx: SessionContext, format: AstmFormat) {
    this.#ctx = ctx;
    this.#format = format;
  }

  attach(port: SerialLink): void {
    const write = (bytes: Buffer) => {
      if (port.isOpen) port.write(bytes);
    };
    const link: Link = {
      port,
      receiver: new AstmReceiver({
        receiverTimeoutMs: this.#format.receiverTimeoutMs,
        maxMessageText: this.#format.maxMessageBytes,
        canAccept: () => !this.#ctx.refusing(),
      }),
      reply: new AstmReplySender(write, this.#ctx.report.log),
      storing: false,
      held: [],
      heldBytes: 0,
    };
    this.#link = link;
    port.on('data', (chunk: Buffer) => this.#onData(link, chunk));
    port.on('close', () => {
      // The next port gets a new receiver: say what the cut-off transfer loses (the analyzer re-sends it).
      if (link.receiver.state === 'transfer') {
        this.#ctx.report.log.warn(
          {},
          'ASTM transfer cut off by the port closing; the partial message was discarded',
        );
      }
    });
    this.#timer ??= setInterval(() => this.#tick(), tickMs).unref();
  }

  drained(): Promise<void> {
    return this.#work;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#work;
  }

  #onData(link: Link, chunk: Buffer): void {
    for (const byte of chunk) if (byte === STX) this.#ctx.report.counts.frames++;
    this.#process(link, chunk);
  }

  #process(link: Link, chunk: Buffer): void {
    const now = monotonicMs();
    const rest = link.reply.active ? link.reply.onData(chunk, now) : chunk;
    if (rest.length === 0) return;
    if (link.storing) {
      this.#hold(link, rest);
      return;
    }
    this.#run(link, link.receiver.feed(rest, now));
  }

  #hold(link: Link, chunk: Buffer): void {
    if (link.heldBytes + chunk.length > maxHeldBytes) {
      this.#ctx.report.malformed(
        new GatewayError('ATTACHE_MALFORMED', 'bytes while a message is being stored exceed 64 KiB'),
        chunk.length,
        'ASTM bytes discarded',
      );
      return;
    }
    link.held.push(chunk);
    link.heldBytes += chunk.length;
  }

  #run(link: Link, actions: AstmAction[]): void {
    for (const action of actions) {
      if (action.type === 'send') {
        if (link.port.isOpen) link.port.write(action.bytes);
      } else if (action.type === 'event') {
        this.#event(link, action.event, action.reason);
      } else {
        this.#message(link, action.text, action.awaitingStore);
      }
    }
  }

  #event(link: Link, event: string, reason: string | undefined): void {
    const { report } = this.#ctx;
    if (event === 'malformed-frame') {
      report.malformed(
        new GatewayError('ATTACHE_MALFORMED', reason ?? 'bad frame'),
        undefined,
        'ASTM frame refused',
      );
    } else if (event === 'timeout') {
      report.log.warn({}, 'ASTM transfer timed out (receiver timer); the partial message was discarded');
    } else if (event === 'duplicate-frame') {
      report.log.info({}, 'ASTM frame re-sent after a lost ACK; acknowledged again, not stored twice');
    } else if (event === 'transfer-end') {
      link.reply.maybeStart(monotonicMs());
    } else if (event === 'busy') {
      this.#busy.refused(report.log);
    } else if (event === 'transfer-start') {
      this.#busy.accepted(report.log);
    } else {
      report.log.debug({ event }, 'ASTM link event');
    }
  }

  #message(link: Link, text: string, awaitingStore: boolean): void {
    const arrived: Arrived = { text, receivedAt: Date.now(), monotonicMs: monotonicMs() };
    if (!awaitingStore) {
      // Already ACKed frame by frame (no L record): it cannot be refused any more; store it anyway.
      this.#work = this.#work.then(() => this.#store(link, arrived)).then(() => undefined);
      return;
    }
    link.storing = true;
    this.#work = this.#work
      .then(() => this.#store(link, arrived))
      .then((stored) => {
        link.storing = false;
        this.#run(link, link.receiver.acknowledge(stored));
        const held = Buffer.concat(link.held);
        link.held = [];
        link.heldBytes = 0;
        if (held.length > 0) this.#process(link, held);
      });
  }

  /** Resolves true when every reading of the message is stored (now or before). Never rejects. */
  async #store(link: Link, arrived: Arrived): Promise<boolean> {
    const { report, device } = this.#ctx;
    let message: AstmMessage;
    try {
      message = parseAstmMessage(arrived.text);
    } catch (err) {
      report.malformed(err, arrived.text.length, 'malformed ASTM message refused');
      return false;
    }
    const key = createHash('sha256').update(arrived.text, 'latin1').digest('hex');
    const raw = astmRawHeader(arrived.text);
    const readings: DeviceReading[] = astmReadings(message, { comments: this.#format.comments }).map(
      (parts, i) => ({
        ...parts,
        idempotencyKey: `astm:${key}:${i}`,
        deviceId: device.id,
        adapter: 'rs232',
        receivedAt: arrived.receivedAt,
        monotonicMs: arrived.monotonicMs,
        raw,
      }),
    );
    const stored = await this.#deliver(readings);
    if (stored && message.queries.length > 0 && this.#format.hostQueries === 'no-information') {
      link.reply.queue(buildNoInformationReply({ timestamp: astmLocalTimestamp() }));
    }
    return stored;
  }

  /** Hands the readings to the sink, in order; true when all are stored (now or before). */
  async #deliver(readings: DeviceReading[]): Promise<boolean> {
    const { report, sink } = this.#ctx;
    if (readings.length === 0)
      report.log.info({}, 'ASTM message without results or queries; nothing to store');
    const outcomes = await Promise.allSettled(readings.map((reading) => sink(reading)));
    report.counts.stored += outcomes.filter((o) => o.status === 'fulfilled').length;
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    const [first] = failures;
    if (first === undefined) return true;
    if (failures.every((err) => isGatewayError(err, 'ATTACHE_MALFORMED'))) {
      report.malformed(first, undefined, 'ASTM message refused by the normalizer');
    } else report.refused(first, failures.length);
    return false;
  }

  #tick(): void {
    const link = this.#link;
    if (link === undefined) return;
    const now = monotonicMs();
    this.#run(link, link.receiver.tick(now));
    link.reply.tick(now);
    if (!link.storing && link.receiver.state === 'idle') link.reply.maybeStart(now);
  }
}
