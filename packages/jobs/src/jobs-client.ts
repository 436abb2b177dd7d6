import { randomBytes } from 'node:crypto';
import { GatewayError, type Logger } from '@attache/core';
import type { JobsTopics, MqttChannel } from './mqtt-channel.js';

/** A job execution as the Jobs service describes it (`execution` of start-next/accepted). */
export interface JobExecution {
  jobId: string;
  executionNumber: number;
  versionNumber: number;
  /** QUEUED or IN_PROGRESS when handed out by start-next. */
  status: string;
  statusDetails?: Record<string, string>;
  /** The job document, as parsed JSON: validated by the agent, never trusted. */
  jobDocument: unknown;
}

/** The statuses a device may report (UpdateJobExecution). */
export type JobExecutionStatus = 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'REJECTED';

/** A request the Jobs service answered on its `/rejected` topic. */
export class JobsRequestRejectedError extends GatewayError {
  /** The service's error code, e.g. `InvalidStateTransition`, `VersionMismatch`, `ResourceNotFound`. */
  readonly serviceCode: string;

  /** `what`: the request (its topic); `serviceCode` and `message` from the rejected answer. */
  constructor(what: string, serviceCode: string, message: string) {
    super('ATTACHE_UPLINK_PUBLISH', `${what} rejected: ${serviceCode} ${message}`.trim());
    this.serviceCode = serviceCode;
  }
}

interface Pending {
  resolve(body: Record<string, unknown>): void;
  reject(err: Error): void;
}

/** Options of {@link JobsClient}. */
export interface JobsClientOptions {
  channel: MqttChannel;
  topics: JobsTopics;
  /** How long to wait for the service's answer to a request, in ms. */
  timeoutMs: number;
  log: Logger;
}

/**
 * The device side of the AWS IoT Jobs MQTT API for one window: requests published with a
 * `clientToken`, answers matched on `/accepted` and `/rejected` by that token.
 */
export class JobsClient {
  readonly #channel: MqttChannel;
  readonly #topics: JobsTopics;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #pending = new Map<string, Pending>();
  readonly #subscribed: string[] = [];

  /** Keeps the options; no I/O: call `open()` first. */
  constructor(options: JobsClientOptions) {
    this.#channel = options.channel;
    this.#topics = options.topics;
    this.#timeoutMs = options.timeoutMs;
    this.#log = options.log;
  }

  /** Subscribes to notify-next and start-next's answers; `onNotify` is called on each notify-next. */
  async open(onNotify: () => void): Promise<void> {
    await this.#subscribe(this.#topics.notifyNext, () => onNotify());
    await this.#subscribeAnswers(this.#topics.startNext);
  }

  /**
   * StartNextPendingJobExecution: the IN_PROGRESS execution, else the oldest QUEUED one, now
   * IN_PROGRESS; undefined when none is pending. Rejects ATTACHE_TIMEOUT without an answer,
   * JobsRequestRejectedError when the service refuses.
   */
  async startNext(): Promise<JobExecution | undefined> {
    const body = await this.#request('start-next', this.#topics.startNext, {});
    return body.execution as JobExecution | undefined;
  }

  /**
   * UpdateJobExecution of `jobId` to `status` with `statusDetails` (string values). Resolves once
   * the service accepted it; rejects like {@link startNext}.
   */
  async update(
    jobId: string,
    executionNumber: number,
    status: JobExecutionStatus,
    statusDetails: Record<string, string>,
  ): Promise<void> {
    const topic = this.#topics.update(jobId);
    if (!this.#subscribed.includes(`${topic}/accepted`)) await this.#subscribeAnswers(topic);
    await this.#request(`update of ${jobId}`, topic, { status, statusDetails, executionNumber });
  }

  /** Unsubscribes everything and fails pending requests with ATTACHE_CANCELED. */
  async close(): Promise<void> {
    for (const pending of this.#pending.values()) {
      pending.reject(new GatewayError('ATTACHE_CANCELED', 'the jobs client was closed'));
    }
    this.#pending.clear();
    for (const topic of this.#subscribed.splice(0)) {
      await this.#channel
        .unsubscribe(topic)
        .catch((err: unknown) => this.#log.warn({ err, topic }, 'unsubscribe failed'));
    }
  }

  async #subscribe(topic: string, handler: (payload: Buffer) => void): Promise<void> {
    await this.#channel.subscribe(topic, handler);
    this.#subscribed.push(topic);
  }

  async #subscribeAnswers(requestTopic: string): Promise<void> {
    await this.#subscribe(`${requestTopic}/accepted`, (p) => this.#answer(p, undefined));
    await this.#subscribe(`${requestTopic}/rejected`, (p) => this.#answer(p, requestTopic));
  }

  #answer(payload: Buffer, rejectedOf: string | undefined): void {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      this.#log.warn({ err }, 'unreadable jobs answer ignored');
      return;
    }
    const token = typeof body.clientToken === 'string' ? body.clientToken : '';
    const pending = this.#pending.get(token);
    if (!pending) return; // another client's answer, or one that came after its timeout
    this.#pending.delete(token);
    if (rejectedOf === undefined) pending.resolve(body);
    else
      pending.reject(new JobsRequestRejectedError(rejectedOf, String(body.code), String(body.message ?? '')));
  }

  async #request(
    what: string,
    topic: string,
    body: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const clientToken = randomBytes(12).toString('hex');
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<Record<string, unknown>>((resolve, reject) => {
      this.#pending.set(clientToken, { resolve, reject });
      timer = setTimeout(() => {
        this.#pending.delete(clientToken);
        reject(
          new GatewayError('ATTACHE_TIMEOUT', `no answer to the jobs ${what} within ${this.#timeoutMs} ms`),
        );
      }, this.#timeoutMs);
    });
    answered.catch(() => undefined); // awaited below; this only keeps an early rejection handled
    try {
      await this.#channel.publish(topic, Buffer.from(JSON.stringify({ ...body, clientToken })));
      return await answered;
    } finally {
      clearTimeout(timer);
      this.#pending.delete(clientToken);
    }
  }
}
