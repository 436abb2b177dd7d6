import type { Writable } from 'node:stream';
import { isGatewayError, type JobsConfig, type Outbox, type UplinkConfig } from '@attache/core';
import type { HealthReport } from '@attache/jobs';
import type { JsonObject, PendingEvent, SettingsOutcome, WindowReport } from '@attache/uplink';
import type { AllowList, CallMessage, ReplyMessage } from './ipc-proxy.js';

/** What a running gateway lets the window's jobs change: its config file and its release. */
export interface UpdateTargets {
  /** The config file the gateway reloads: config-update jobs are applied to it. */
  configPath: string;
  /** The install root (`releases/<version>`, `current`): software-update jobs need it. */
  installRoot?: string;
  /** The root release installer's socket: software updates are installed by it (root-owned). */
  releaseInstaller?: string;
}

/** What the parent asks of one window. */
export interface WindowStart {
  type: 'start';
  gatewayId: string;
  uplink: UplinkConfig;
  logLevel: string;
  maxDurationMs: number;
  linger: boolean;
  /** True when the parent serves state, shadow settings and events. */
  host: boolean;
  /** Set with `uplink.provisioning`: where the window keeps the box's provisioning progress. */
  provisioningDir?: string;
  /** Set when the config takes AWS IoT Jobs: they run in the window process itself. */
  jobs?: { config: JobsConfig; dataDir: string; updates?: UpdateTargets };
  /**
   * True when the pages' bytes come on the page pipe (fd 4 of the window process, page-pipe.ts) and
   * `readPage` replies with a {@link PipedPage}; otherwise the reply carries the page itself.
   */
  pagePipe?: boolean;
}

/** Parent → window process: the start, an abort, and the replies to its calls. */
export type ToWindow = WindowStart | { type: 'abort' } | ReplyMessage;

/** The gateway's handle on a window process: the forked `window-worker.js`, or one a test runs in-process. */
export interface WindowChild {
  readonly pid?: number | undefined;
  /** The gateway's end of the page pipe, when the window process has one (see {@link WindowStart}). */
  readonly pagePipe?: Writable | undefined;
  /** False once the channel closed. */
  readonly connected: boolean;
  send(message: ToWindow, callback: (err: Error | null) => void): void;
  kill(signal: NodeJS.Signals): void;
  disconnect(): void;
  on(event: 'message', listener: (message: FromWindow) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  removeAllListeners(event: 'message' | 'exit'): unknown;
}

/** The window process's last message: how the window ended (`jobsError`: its jobs could not be set up). */
export interface WindowResultMessage {
  type: 'result';
  result: WindowReport & { jobsError?: { code: string; message: string } };
}

/** Window process → parent: calls of {@link WindowParent} methods, then the result. */
export type FromWindow = CallMessage | WindowResultMessage;

/**
 * Everything the window process may ask of the gateway, one method each: the outbox (records read,
 * as pages of bytes for plain batches, and removed once acknowledged) and the host (state, shadow settings, events, updates). A new
 * capability is one method here: the compiler then asks for it in {@link windowParentMethods} and
 * in the running gateway's host (gateway.ts).
 */
export interface WindowParent extends Outbox {
  /** The gateway's state for the state topic and the shadow's `reported`. */
  reportState(): Promise<JsonObject>;
  /** Validates, applies and persists the shadow's desired settings. */
  applyDesired(desired: JsonObject, version: number): Promise<SettingsOutcome>;
  /** Events waiting for upload, oldest first. */
  pendingEvents(): Promise<PendingEvent[]>;
  /** Forgets the events the broker acknowledged. */
  removeEvents(eventIds: number[]): Promise<void>;
  /** Re-reads and validates the config file and restarts the adapters on it (config-update jobs). */
  reload(): Promise<void>;
  /** Whether the gateway runs healthy on the config last reloaded. */
  health(): Promise<HealthReport>;
  /** Ends the gateway after this window so that its supervisor restarts it (software-update jobs). */
  restartAfterWindow(): Promise<void>;
}

/** The methods the parent serves to a window process; a call of any other name is refused. */
export const windowParentMethods: AllowList<WindowParent> = {
  read: true,
  readPage: true,
  remove: true,
  reportState: true,
  applyDesired: true,
  pendingEvents: true,
  removeEvents: true,
  reload: true,
  health: true,
  restartAfterWindow: true,
};

/** The host part of {@link WindowParent}: what a running gateway serves (the runner serves the outbox). */
export type WindowHostServer = Omit<WindowParent, keyof Outbox>;

/** What config-update and software-update jobs ask of the running gateway. */
export type UpdateHost = Pick<WindowHostServer, 'reload' | 'health' | 'restartAfterWindow'>;

/** The report of a window that failed outside its own handling (it could not start, or its process broke), with the cause. */
export function failedWindow(openedAt: string, err: unknown): WindowReport {
  const code = isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  return {
    openedAt,
    closedAt: new Date().toISOString(),
    outcome: 'failed',
    endedBy: 'failed',
    records: 0,
    messages: 0,
    bytes: 0,
    firstSeq: null,
    lastSeq: null,
    events: 0,
    error: { code, message },
  };
}
