// One connectivity window as the window process runs it: it takes the gateway's messages (start,
// abort, replies), opens the window with the AWS IoT SDK over the gateway's outbox and host (calls
// through a request/response proxy), and reports how it ended. `window-worker.ts` runs it in the
// forked process; a test can run it in-process over any channel.
import type { Logger, Outbox, PageOptions } from '@attache/core';
import { IotCoreUplink, type WindowHost, type WindowProvisioning } from '@attache/uplink';
import { RequestProxy } from './ipc-proxy.js';
import { createLogger } from './log.js';
import type { PageFrameReader, PipedPage } from './page-pipe.js';
import { readSerialNumber } from './serial-number.js';
import { jobsRunner } from './window-jobs.js';
import {
  type FromWindow,
  failedWindow,
  type ToWindow,
  type WindowParent,
  type WindowResultMessage,
  type WindowStart,
  windowParentMethods,
} from './window-protocol.js';

/** The window's end of its channel to the gateway. */
export interface WindowPort {
  /** Sends `message` to the gateway; `sent` is called once it was handed over. */
  send(message: FromWindow, sent?: () => void): void;
  /** Ends the window's process (after its result was sent): `code` 0. */
  exit(code: number): void;
  /** The window's logger at `level`. Default: pino JSON lines on stdout. */
  logger?(level: string): Logger;
  /** The window's end of the page pipe, opened when the gateway says it sends pages on it. */
  pagePipe?(): PageFrameReader;
}

/** One window: `receive` takes the gateway's messages; the result is sent once, then `exit(0)`. */
export class WindowProcess {
  readonly #port: WindowPort;
  /** The gateway's outbox and host, each method a call over the channel. */
  readonly #parent: RequestProxy<WindowParent>;
  readonly #abort = new AbortController();
  readonly #openedAt = new Date().toISOString();
  #reported = false;
  /** Why the window could not take jobs, when it could not: the window uploads without them. */
  #jobsError: { code: string; message: string } | undefined;

  constructor(port: WindowPort) {
    this.#port = port;
    this.#parent = new RequestProxy<WindowParent>(windowParentMethods, (call) => port.send(call));
  }

  /** A message from the gateway. */
  receive(message: ToWindow): void {
    switch (message.type) {
      case 'start':
        this.#start(message);
        break;
      case 'abort':
        this.abort();
        break;
      case 'reply':
        this.#parent.settle(message);
        break;
    }
  }

  /** Ends the window early, as an abort from the gateway (unacknowledged records stay in the cache). */
  abort(): void {
    this.#abort.abort();
  }

  /** A failure outside the window's own handling (a bug, a system error): reported with its cause. */
  failed(err: unknown): void {
    const result = failedWindow(this.#openedAt, err);
    process.stderr.write(`attache window: ${result.error?.code}: ${result.error?.message}\n`);
    this.#report(result);
  }

  #start(start: WindowStart): void {
    const logger = this.#port.logger?.(start.logLevel) ?? createLogger(start.logLevel, { pretty: false });
    const uplink = new IotCoreUplink({ gatewayId: start.gatewayId, config: start.uplink, logger });
    const outbox = this.#outbox(start);
    void Promise.all([this.#host(start, logger), windowProvisioning(start)])
      .then(([host, provisioning]) =>
        uplink.openWindow(outbox, {
          signal: this.#abort.signal,
          maxDurationMs: start.maxDurationMs,
          linger: start.linger,
          ...(host === undefined ? {} : { host }),
          ...(provisioning === undefined ? {} : { provisioning }),
        }),
      )
      .then(
        (result) => this.#report(result),
        (err: unknown) => this.failed(err),
      );
  }

  /**
   * The gateway's outbox: with a page pipe, a page's reply names its frame on the pipe, read into a
   * buffer this process reuses once the page's batch went to the MQTT client.
   */
  #outbox(start: WindowStart): Outbox {
    const api = this.#parent.api;
    const frames = start.pagePipe ? this.#port.pagePipe?.() : undefined;
    if (frames === undefined) return api;
    // The proxy has every method of the allow-list, readPage included.
    const call = api.readPage as NonNullable<Outbox['readPage']>;
    const readPage = async (options: PageOptions) => {
      const piped = (await call(options)) as unknown as PipedPage | null;
      return piped && frames.take(piped);
    };
    return { read: api.read, remove: api.remove, readPage };
  }

  /** Sends the result once; the process ends when the gateway has it. */
  #report(result: WindowResultMessage['result']): void {
    if (this.#reported) return;
    this.#reported = true;
    const jobsError = this.#jobsError;
    const full = jobsError === undefined ? result : { ...result, jobsError };
    // The CRT client may keep the event loop alive after close: exit once the parent has the result.
    this.#port.send({ type: 'result', result: full }, () => this.#port.exit(0));
  }

  /** The window's host: the parent (state, shadow, events) over IPC, and the jobs run here. */
  async #host(start: WindowStart, logger: Logger): Promise<WindowHost | undefined> {
    const runJobs = await this.#jobs(start, logger);
    if (!start.host) return runJobs && { runJobs };
    return runJobs ? { ...this.#parent.api, runJobs } : this.#parent.api;
  }

  /**
   * The window's jobs runner, or undefined when the jobs could not be set up (e.g. the jobs key cannot
   * be read): that is logged and reported with the window, and the telemetry still goes up.
   */
  async #jobs(start: WindowStart, logger: Logger): Promise<WindowHost['runJobs']> {
    const { jobs } = start;
    if (jobs === undefined) return undefined;
    const { updates, ...settings } = jobs;
    try {
      return await jobsRunner({
        thingName: start.gatewayId,
        ...settings,
        logger,
        ...(updates === undefined ? {} : { updates: { ...updates, host: this.#parent.api } }),
      });
    } catch (err) {
      const message = `jobs not taken in this window: ${(err as Error).message}`;
      this.#jobsError = { code: 'ATTACHE_JOBS_UNAVAILABLE', message };
      logger.error({ err, code: this.#jobsError.code }, message);
      return undefined;
    }
  }
}

/** The provisioning settings of a window that may have to provision the box by claim. */
async function windowProvisioning(start: WindowStart): Promise<WindowProvisioning | undefined> {
  if (start.provisioningDir === undefined) return undefined;
  return { stateDir: start.provisioningDir, serialNumber: await readSerialNumber() };
}
