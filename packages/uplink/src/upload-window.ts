import type { Logger, Outbox, UplinkConfig, WindowResult } from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';
import { type Batch, BatchReader } from './batch-reader.js';
import { MqttSession } from './mqtt-session.js';

/** Options of {@link runWindow}. */
export interface UploadWindowOptions {
  gatewayId: string;
  config: UplinkConfig;
  outbox: Outbox;
  log: Logger;
  signal?: AbortSignal;
}

type Outcome = WindowResult['outcome'];

interface Ending {
  outcome: Outcome;
  error?: { code: string; message: string };
}

// How long the end of a window waits for PUBACKs already received to finish their outbox.remove.
const settleTimeoutMs = 5000;

function asError(err: unknown, fallback: 'ATTACHE_UPLINK_CONNECT' | 'ATTACHE_UPLINK_PUBLISH'): GatewayError {
  if (isGatewayError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError(fallback, message, { cause: err });
}

/** One connectivity window: see IotCoreUplink.openWindow for the contract. */
class UploadWindow {
  readonly #options: UploadWindowOptions;
  readonly #reader: BatchReader;
  readonly #topic: string;
  readonly #inflight = new Set<Promise<void>>();
  readonly #ended: Promise<void>;
  #ending: Ending | undefined;
  #signalEnd: () => void = () => {};
  #session: MqttSession | undefined;
  /** Set once the window returned: late PUBACKs no longer touch the outbox. */
  #closed = false;
  readonly #acked: Pick<WindowResult, 'records' | 'messages' | 'bytes' | 'firstSeq' | 'lastSeq'> = {
    records: 0,
    messages: 0,
    bytes: 0,
    firstSeq: null,
    lastSeq: null,
  };

  constructor(options: UploadWindowOptions) {
    this.#options = options;
    this.#reader = new BatchReader({
      outbox: options.outbox,
      gatewayId: options.gatewayId,
      maxMessageBytes: options.config.maxMessageBytes,
    });
    this.#topic = options.config.topic.replaceAll('{gatewayId}', options.gatewayId);
    this.#ended = new Promise((resolve) => {
      this.#signalEnd = resolve;
    });
  }

  async run(): Promise<WindowResult> {
    const openedAt = new Date().toISOString();
    const { config, signal, log } = this.#options;
    const onDeadline = (): void => this.#end({ outcome: 'deadline' });
    const timer = setTimeout(onDeadline, config.window.maxDurationSeconds * 1000);
    signal?.addEventListener('abort', onDeadline, { once: true });
    if (signal?.aborted) onDeadline();
    log.info({ topic: this.#topic }, 'window opened');
    try {
      await this.#upload();
    } catch (err) {
      this.#fail(asError(err, 'ATTACHE_UPLINK_PUBLISH'));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onDeadline);
      await this.#teardown();
    }
    const ending = this.#ending ?? { outcome: 'failed' };
    const result: WindowResult = { openedAt, closedAt: new Date().toISOString(), ...ending, ...this.#acked };
    log[result.outcome === 'failed' ? 'warn' : 'info']({ ...result }, 'window closed');
    return result;
  }

  #end(ending: Ending): void {
    if (this.#ending) return;
    this.#ending = ending;
    this.#signalEnd();
  }

  #fail(err: GatewayError): void {
    if (this.#ending) return;
    this.#options.log.warn({ err }, 'window failed');
    this.#end({ outcome: 'failed', error: { code: err.code, message: err.message } });
  }

  async #upload(): Promise<void> {
    const first = await this.#reader.next();
    if (first === null) return this.#end({ outcome: 'drained' });
    if (this.#ending) return;
    const { gatewayId, config, log } = this.#options;
    const session = await MqttSession.create({ gatewayId, config, log });
    this.#session = session;
    if (this.#ending) return;
    await Promise.race([session.connect(this.#options.config.connectTimeoutMs), this.#ended]);
    if (this.#ending) return;
    session.onceDisconnected((reason) =>
      this.#fail(new GatewayError('ATTACHE_UPLINK_PUBLISH', `connection lost (${reason})`)),
    );
    await this.#pump(first);
  }

  /** Keeps up to maxInFlight batches unacknowledged until the outbox is empty or the window ends. */
  async #pump(first: Batch): Promise<void> {
    const { maxInFlight } = this.#options.config;
    let next: Batch | null = first;
    while (!this.#ending) {
      // Re-read after every PUBACK: records stored during the window are uploaded too.
      next ??= await this.#readAfterInflight();
      if (this.#ending) return;
      if (next !== null && this.#inflight.size < maxInFlight) {
        this.#launch(next);
        next = null;
      } else if (next === null && this.#inflight.size === 0) {
        this.#end({ outcome: 'drained' });
      } else {
        await Promise.race([...this.#inflight, this.#ended]);
      }
    }
  }

  /** The next batch; when reading fails, lets the batches in flight finish before rejecting. */
  async #readAfterInflight(): Promise<Batch | null> {
    try {
      return await this.#reader.next();
    } catch (err) {
      await Promise.race([Promise.all(this.#inflight), this.#ended]);
      throw err;
    }
  }

  #launch(batch: Batch): void {
    const sent = this.#send(batch);
    this.#inflight.add(sent);
    void sent.then(() => this.#inflight.delete(sent));
  }

  /** Publishes one batch and deletes its records after a successful PUBACK. Never rejects. */
  async #send(batch: Batch): Promise<void> {
    const range = `${batch.firstSeq}-${batch.lastSeq}`;
    try {
      const reasonCode = await (this.#session as MqttSession).publish(this.#topic, batch.payload);
      if (reasonCode >= 0x80) {
        const hex = `0x${reasonCode.toString(16)}`;
        throw new GatewayError(
          'ATTACHE_UPLINK_PUBLISH',
          `broker refused batch ${range} (reason code ${hex})`,
        );
      }
      if (this.#closed) return;
      await this.#options.outbox.remove(batch.firstSeq, batch.lastSeq);
      this.#count(batch);
    } catch (err) {
      // After the window ended, stopping the client fails the publishes still pending: expected.
      if (!this.#ending) this.#fail(asError(err, 'ATTACHE_UPLINK_PUBLISH'));
    }
  }

  #count(batch: Batch): void {
    const acked = this.#acked;
    acked.records += batch.count;
    acked.messages += 1;
    acked.bytes += batch.payload.length;
    acked.firstSeq = acked.firstSeq === null ? batch.firstSeq : Math.min(acked.firstSeq, batch.firstSeq);
    acked.lastSeq = acked.lastSeq === null ? batch.lastSeq : Math.max(acked.lastSeq, batch.lastSeq);
  }

  /** Stops the client, lets PUBACKs already received finish their `remove`, then closes the client. */
  async #teardown(): Promise<void> {
    await this.#session?.stop();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, settleTimeoutMs)));
    await Promise.race([Promise.all(this.#inflight), timeout]);
    clearTimeout(timer);
    this.#closed = true;
    this.#session?.close();
  }
}

/** Runs one window against `options.outbox`; resolves how it ended, never rejects. */
export function runWindow(options: UploadWindowOptions): Promise<WindowResult> {
  return new UploadWindow(options).run();
}
