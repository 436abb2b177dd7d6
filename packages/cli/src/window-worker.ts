// The window process: forked by the gateway for one connectivity window, so that the AWS CRT (TLS,
// MQTT, its threads and ~10 MB of RSS) lives only while a window is open and a fault in it cannot
// stop the acquisition of readings. It sees the gateway's cache (and its state, shadow settings and
// events) over IPC.
import { GatewayError, type Logger, type Outbox, type StoredRecord } from '@attache/core';
import type { HealthReport } from '@attache/jobs';
import {
  IotCoreUplink,
  type JsonObject,
  type PendingEvent,
  type SettingsOutcome,
  type WindowHost,
  type WindowProvisioning,
} from '@attache/uplink';
import { createLogger } from './log.js';
import { readSerialNumber } from './serial-number.js';
import { jobsRunner, type UpdateHost } from './window-jobs.js';
import {
  type FromWindow,
  failedWindow,
  type ToWindow,
  type WindowResultMessage,
  type WindowStart,
} from './window-protocol.js';

/** A request before it gets its id (Omit distributed over the union). */
type Request =
  Exclude<FromWindow, { type: 'result' }> extends infer R
    ? R extends unknown
      ? Omit<R, 'id'>
      : never
    : never;

function send(message: FromWindow): void {
  process.send?.(message);
}

/** The parent's cache and host, one request at a time over the IPC channel. */
class IpcBridge implements Outbox, WindowHost, UpdateHost {
  #next = 1;
  readonly #pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();

  reply(message: Extract<ToWindow, { type: 'reply' }>): void {
    const pending = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    if (!pending) return;
    if (message.error)
      pending.reject(new GatewayError(message.error.code as GatewayError['code'], message.error.message));
    else pending.resolve(message.records ?? message.value);
  }

  #request<T>(message: Request): Promise<T> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      send({ ...message, id } as FromWindow);
    });
  }

  read(options: { afterSeq: number; limit: number; maxBytes: number }): Promise<StoredRecord[]> {
    return this.#request({ type: 'read', ...options });
  }

  async remove(firstSeq: number, lastSeq: number): Promise<void> {
    await this.#request({ type: 'remove', firstSeq, lastSeq });
  }

  reportState(): Promise<JsonObject> {
    return this.#request({ type: 'state' });
  }

  applyDesired(desired: JsonObject, version: number): Promise<SettingsOutcome> {
    return this.#request({ type: 'desired', desired, version });
  }

  pendingEvents(): Promise<PendingEvent[]> {
    return this.#request({ type: 'events' });
  }

  async removeEvents(eventIds: number[]): Promise<void> {
    await this.#request({ type: 'removeEvents', eventIds });
  }

  async reload(): Promise<void> {
    await this.#request({ type: 'reload' });
  }

  health(): Promise<HealthReport> {
    return this.#request({ type: 'health' });
  }

  async restartAfterWindow(): Promise<void> {
    await this.#request({ type: 'restart' });
  }
}

const bridge = new IpcBridge();

/** Why the window could not take jobs, when it could not: the window uploads without them. */
let jobsError: { code: string; message: string } | undefined;

/**
 * The window's jobs runner, or undefined when the jobs could not be set up (e.g. the jobs key cannot
 * be read): that is logged and reported with the window, and the telemetry still goes up.
 */
async function jobsOf(start: WindowStart, logger: Logger): Promise<WindowHost['runJobs']> {
  const { jobs } = start;
  if (jobs === undefined) return undefined;
  const { updates, ...settings } = jobs;
  try {
    return await jobsRunner({
      thingName: start.gatewayId,
      ...settings,
      logger,
      ...(updates === undefined ? {} : { updates: { ...updates, host: bridge } }),
    });
  } catch (err) {
    const message = `jobs not taken in this window: ${(err as Error).message}`;
    jobsError = { code: 'ATTACHE_JOBS_UNAVAILABLE', message };
    logger.error({ err, code: jobsError.code }, message);
    return undefined;
  }
}

/** The window's host: the parent (state, shadow, events) over IPC, and the jobs run here. */
async function windowHost(start: WindowStart, logger: Logger): Promise<WindowHost | undefined> {
  const runJobs = await jobsOf(start, logger);
  if (runJobs === undefined) return start.host ? bridge : undefined;
  if (!start.host) return { runJobs };
  return {
    reportState: () => bridge.reportState(),
    applyDesired: (desired, version) => bridge.applyDesired(desired, version),
    pendingEvents: () => bridge.pendingEvents(),
    removeEvents: (ids) => bridge.removeEvents(ids),
    runJobs,
  };
}
/** The provisioning settings of a window that may have to provision the box by claim. */
async function windowProvisioning(start: WindowStart): Promise<WindowProvisioning | undefined> {
  if (start.provisioningDir === undefined) return undefined;
  return { stateDir: start.provisioningDir, serialNumber: await readSerialNumber() };
}

const abort = new AbortController();
const openedAt = new Date().toISOString();
let reported = false;

/** Sends the result once; the process exits when the parent has it. */
function report(result: WindowResultMessage['result']): void {
  if (reported) return;
  reported = true;
  const full = jobsError === undefined ? result : { ...result, jobsError };
  // The CRT client may keep the event loop alive after close: exit once the parent has the result.
  process.send?.({ type: 'result', result: full } satisfies FromWindow, () => process.exit(0));
}

/** A failure outside the window's own handling (a bug, a system error): reported with its cause. */
function failed(err: unknown): void {
  const result = failedWindow(openedAt, err);
  process.stderr.write(`attache window: ${result.error?.code}: ${result.error?.message}\n`);
  report(result);
}

process.on('uncaughtException', failed);
process.on('unhandledRejection', failed);
// Ctrl-C (the terminal signals the whole process group) and `systemctl stop` (SIGTERM to every
// process of the unit) reach this process too: the window ends as interrupted, like an abort from
// the gateway, and reports; unacknowledged records stay in the cache.
process.on('SIGINT', () => abort.abort());
process.on('SIGTERM', () => abort.abort());

process.on('message', (message: ToWindow) => {
  switch (message.type) {
    case 'start': {
      const logger = createLogger(message.logLevel, { pretty: false });
      const uplink = new IotCoreUplink({ gatewayId: message.gatewayId, config: message.uplink, logger });
      void Promise.all([windowHost(message, logger), windowProvisioning(message)])
        .then(([host, provisioning]) =>
          uplink.openWindow(bridge, {
            signal: abort.signal,
            maxDurationMs: message.maxDurationMs,
            linger: message.linger,
            ...(host === undefined ? {} : { host }),
            ...(provisioning === undefined ? {} : { provisioning }),
          }),
        )
        .then(report, failed);
      break;
    }
    case 'abort':
      abort.abort();
      break;
    case 'reply':
      bridge.reply(message);
      break;
  }
});
// The gateway went away: end the window; unacknowledged records are still in its cache.
process.on('disconnect', () => process.exit(1));
