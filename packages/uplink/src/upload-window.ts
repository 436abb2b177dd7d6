import type { Logger, Outbox, UplinkConfig, WindowResult } from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';
import { type Batch, BatchReader } from './batch-reader.js';
import { provisionByClaim } from './fleet-provisioning.js';
import { MqttSession } from './mqtt-session.js';
import { checkResidency } from './residency.js';
import { ShadowSession } from './shadow-session.js';
import { probeTls } from './tls-probe.js';
import { type UplinkTopics, uplinkTopics } from './topics.js';
import type { WindowChannel, WindowHost } from './window-host.js';

/**
 * How a window ended, finer than `outcome`; `interrupted`: its signal was aborted (the gateway
 * stopping: Ctrl-C, `systemctl stop`).
 */
export type EndedBy = 'drained' | 'deadline' | 'byte-budget' | 'interrupted' | 'failed';

/** A window's result: core's WindowResult plus what only the uplink knows. */
export interface WindowReport extends WindowResult {
  endedBy: EndedBy;
  /** Gateway events acknowledged by the broker. */
  events: number;
}

/** Options of {@link runWindow}. */
export interface UploadWindowOptions {
  gatewayId: string;
  config: UplinkConfig;
  outbox: Outbox;
  log: Logger;
  signal?: AbortSignal;
  /** Default `config.window.maxDurationSeconds` × 1000. */
  maxDurationMs?: number;
  /** Byte budget; default `config.window.maxBytes` (0: none). */
  maxBytes?: number;
  /** Stay connected once drained and upload records as they arrive, until deadline or abort. */
  linger?: boolean;
  host?: WindowHost;
  /** Set with `config.provisioning`: provision the box by claim first when it has no certificate. */
  provisioning?: WindowProvisioning;
}

/** Where a window keeps the box's provisioning progress, and the board's serial number. */
export interface WindowProvisioning {
  stateDir: string;
  serialNumber: string | null;
}

interface Ending {
  endedBy: EndedBy;
  error?: { code: string; message: string };
}

// How long the end of a window waits for PUBACKs already received to finish their outbox.remove.
const settleTimeoutMs = 5000;
/** A lingering window looks for new records this often. */
const lingerPollMs = 1000;
const probeTimeoutMs = 15_000;

function asError(err: unknown, fallback: 'ATTACHE_UPLINK_CONNECT' | 'ATTACHE_UPLINK_PUBLISH'): GatewayError {
  if (isGatewayError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError(fallback, message, { cause: err });
}

const outcomes: Record<EndedBy, WindowResult['outcome']> = {
  drained: 'drained',
  deadline: 'deadline',
  'byte-budget': 'deadline',
  interrupted: 'deadline',
  failed: 'failed',
};

/** One connectivity window: see IotCoreUplink.openWindow for the contract. */
class UploadWindow {
  readonly #options: UploadWindowOptions;
  readonly #reader: BatchReader;
  #topics: UplinkTopics | undefined;
  readonly #inflight = new Set<Promise<void>>();
  readonly #ended: Promise<void>;
  #ending: Ending | undefined;
  #signalEnd: () => void = () => {};
  #session: MqttSession | undefined;
  #shadow: ShadowSession | undefined;
  /** The host's jobs, run beside the upload; settled (never rejects). */
  #jobs: Promise<void> = Promise.resolve();
  readonly #jobsAbort = new AbortController();
  #sentBytes = 0;
  #events = 0;
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
      compression: options.config.compression,
    });
    this.#ended = new Promise((resolve) => {
      this.#signalEnd = resolve;
    });
  }

  async run(): Promise<WindowReport> {
    const openedAt = new Date().toISOString();
    const { config, signal, log } = this.#options;
    const durationMs = this.#options.maxDurationMs ?? config.window.maxDurationSeconds * 1000;
    const timer = setTimeout(() => this.#end({ endedBy: 'deadline' }), durationMs);
    const onAbort = (): void => this.#end({ endedBy: 'interrupted' });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    log.info('window opened');
    try {
      await this.#upload();
    } catch (err) {
      this.#fail(asError(err, 'ATTACHE_UPLINK_PUBLISH'));
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      await this.#teardown();
    }
    const { endedBy, error } = this.#ending ?? { endedBy: 'failed' };
    const result: WindowReport = {
      openedAt,
      closedAt: new Date().toISOString(),
      outcome: outcomes[endedBy],
      endedBy,
      ...this.#acked,
      events: this.#events,
      ...(error ? { error } : {}),
    };
    log[result.outcome === 'failed' ? 'warn' : 'info']({ ...result }, 'window closed');
    return result;
  }

  #topicsOf(): UplinkTopics {
    if (!this.#topics)
      throw new GatewayError('ATTACHE_INTERNAL', 'topics used before the window resolved them');
    return this.#topics;
  }

  #end(ending: Ending): void {
    if (this.#ending) return;
    this.#ending = ending;
    this.#jobsAbort.abort();
    this.#signalEnd();
  }

  #fail(err: GatewayError): void {
    if (this.#ending) return;
    this.#options.log.warn({ err }, 'window failed');
    this.#end({ endedBy: 'failed', error: { code: err.code, message: err.message } });
  }

  async #upload(): Promise<void> {
    const { gatewayId, config, log, host } = this.#options;
    this.#topics = uplinkTopics(gatewayId, config);
    checkResidency(config);
    const { provisioning } = this.#options;
    if (provisioning && config.provisioning) {
      await Promise.race([provisionByClaim({ gatewayId, config, log, ...provisioning }), this.#ended]);
      if (this.#ending) return;
    }
    // The SDK (~0.2 s of CPU on an x86 VM) loads while the gateway reads the first page.
    void MqttSession.preload();
    const first = await this.#reader.next();
    const events = (await host?.pendingEvents?.()) ?? [];
    const hasWork =
      first !== null || events.length > 0 || host?.reportState !== undefined || host?.runJobs !== undefined;
    if (!hasWork && !this.#options.linger) return this.#end({ endedBy: 'drained' });
    if (this.#ending) return;
    await Promise.race([probeTls(config, Math.min(probeTimeoutMs, config.connectTimeoutMs)), this.#ended]);
    if (this.#ending) return;
    const session = await MqttSession.create({ gatewayId, config, log });
    this.#session = session;
    if (this.#ending) return;
    await Promise.race([session.connect(config.connectTimeoutMs), this.#ended]);
    if (this.#ending) return;
    session.onceDisconnected((reason) =>
      this.#fail(new GatewayError('ATTACHE_UPLINK_PUBLISH', `connection lost (${reason})`)),
    );
    this.#startShadow(session);
    this.#startJobs(session);
    await this.#publishState();
    for (const event of events) this.#launch(this.#sendEvent(event));
    await this.#pump(first);
  }

  #startShadow(session: MqttSession): void {
    const { host, log } = this.#options;
    const topics = this.#topicsOf().shadow;
    if (!topics || !host?.reportState) return;
    const shadow = new ShadowSession({ session, topics, host, log });
    this.#shadow = shadow;
    // The shadow runs beside the upload; the window waits for it before it counts as drained.
    void shadow
      .subscribe()
      .then(() => shadow.sync())
      .catch((err: unknown) => log.warn({ err }, 'shadow unavailable'));
  }

  #startJobs(session: MqttSession): void {
    const { host, log } = this.#options;
    if (!host?.runJobs) return;
    const handlers = new Map<string, (payload: Buffer) => void>();
    session.onMessage((topic, payload) => handlers.get(topic)?.(payload));
    const channel: WindowChannel = {
      publish: async (topic, payload) => {
        await session.publish(topic, payload);
      },
      subscribe: async (topic, handler) => {
        handlers.set(topic, handler);
        await session.subscribe([topic]);
      },
      unsubscribe: async (topic) => {
        handlers.delete(topic);
        await session.unsubscribe([topic]);
      },
    };
    this.#jobs = host
      .runJobs(channel, this.#jobsAbort.signal)
      .catch((err: unknown) => log.warn({ err }, 'jobs failed in this window'));
  }

  async #publishState(): Promise<void> {
    const { host, gatewayId } = this.#options;
    if (!host?.reportState) return;
    const state = await host.reportState();
    const message = { schemaVersion: 1, gatewayId, at: new Date().toISOString(), state };
    this.#launch(
      this.#publish(
        this.#topicsOf().state,
        Buffer.from(JSON.stringify(message)),
        'application/json',
        () => {},
      ),
    );
  }

  /** Keeps up to maxInFlight batches unacknowledged until the outbox is empty or the window ends. */
  async #pump(first: Batch | null): Promise<void> {
    const { config, linger } = this.#options;
    const maxBytes = this.#options.maxBytes ?? config.window.maxBytes;
    let next: Batch | null = first;
    while (!this.#ending) {
      // Re-read after every PUBACK: records stored during the window are uploaded too.
      next ??= await this.#readAfterInflight();
      if (this.#ending) return;
      const overBudget = next !== null && maxBytes > 0 && this.#sentBytes + next.payload.length > maxBytes;
      if (next !== null && !overBudget && this.#inflight.size < config.maxInFlight) {
        this.#sentBytes += next.payload.length;
        this.#launch(this.#sendBatch(next));
        // The MQTT client copied the payload when the publish was called (synchronously, above):
        // the page's buffer can take a later page.
        next.release?.();
        next = null;
      } else if (this.#inflight.size > 0) {
        await Promise.race([...this.#inflight, this.#ended]);
      } else if (overBudget) {
        this.#end({ endedBy: 'byte-budget' });
      } else if (linger) {
        await this.#shadow?.settled();
        await Promise.race([new Promise((resolve) => setTimeout(resolve, lingerPollMs)), this.#ended]);
      } else {
        await this.#shadow?.settled();
        await Promise.race([this.#jobs, this.#ended]);
        this.#end({ endedBy: 'drained' });
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

  #launch(sent: Promise<void>): void {
    this.#inflight.add(sent);
    void sent.then(() => this.#inflight.delete(sent));
  }

  #sendBatch(batch: Batch): Promise<void> {
    const { firstSeq, lastSeq, count, payload } = batch;
    // Only the payload's length is counted after the PUBACK: its bytes may hold a later page by then.
    const sent = { firstSeq, lastSeq, count, bytes: payload.length };
    return this.#publish(this.#topicsOf().telemetry, payload, batch.contentType, async () => {
      await this.#options.outbox.remove(firstSeq, lastSeq);
      this.#count(sent);
    });
  }

  #sendEvent(event: { eventId: number }): Promise<void> {
    const payload = Buffer.from(JSON.stringify(event));
    return this.#publish(this.#topicsOf().events, payload, 'application/json', async () => {
      await this.#options.host?.removeEvents?.([event.eventId]);
      this.#events++;
    });
  }

  /** Publishes one message, then runs `acked` after a successful PUBACK. Never rejects. */
  async #publish(topic: string, payload: Buffer, contentType: string, acked: () => unknown): Promise<void> {
    try {
      const reasonCode = await (this.#session as MqttSession).publish(topic, payload, contentType);
      if (reasonCode >= 0x80) {
        const hex = `0x${reasonCode.toString(16)}`;
        throw new GatewayError(
          'ATTACHE_UPLINK_PUBLISH',
          `broker refused a message to ${topic} (reason code ${hex})`,
        );
      }
      if (this.#closed) return;
      await acked();
    } catch (err) {
      // After the window ended, stopping the client fails the publishes still pending: expected.
      if (!this.#ending) this.#fail(asError(err, 'ATTACHE_UPLINK_PUBLISH'));
    }
  }

  #count(batch: { firstSeq: number; lastSeq: number; count: number; bytes: number }): void {
    const acked = this.#acked;
    acked.records += batch.count;
    acked.messages += 1;
    acked.bytes += batch.bytes;
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
export function runWindow(options: UploadWindowOptions): Promise<WindowReport> {
  return new UploadWindow(options).run();
}
