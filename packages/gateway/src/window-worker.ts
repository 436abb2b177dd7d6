// The window process: forked by the gateway for one connectivity window, so that the AWS CRT (TLS,
// MQTT, its threads and ~10 MB of RSS) lives only while a window is open and a fault in it cannot
// stop the acquisition of readings. It sees the gateway's cache (and its state, shadow settings and
// events) over IPC.
import type { Logger } from '@attache/core';
import { IotCoreUplink, type WindowHost, type WindowProvisioning } from '@attache/uplink';
import { RequestProxy } from './ipc-proxy.js';
import { createLogger } from './log.js';
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

/** The gateway's outbox and host, each method a call over the IPC channel. */
const parent = new RequestProxy<WindowParent>(windowParentMethods, (call) => process.send?.(call));

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
      ...(updates === undefined ? {} : { updates: { ...updates, host: parent.api } }),
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
  if (!start.host) return runJobs && { runJobs };
  return runJobs ? { ...parent.api, runJobs } : parent.api;
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
          uplink.openWindow(parent.api, {
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
      parent.settle(message);
      break;
  }
});
// The gateway went away: end the window; unacknowledged records are still in its cache.
process.on('disconnect', () => process.exit(1));
