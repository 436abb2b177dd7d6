import { isGatewayError, type JobsConfig, type StoredRecord, type UplinkConfig } from '@attache/core';
import type { HealthReport } from '@attache/jobs';
import type { JsonObject, SettingsOutcome, WindowReport } from '@attache/uplink';

/** What a running gateway lets the window's jobs change: its config file and its release. */
export interface UpdateTargets {
  /** The config file the gateway reloads: config-update jobs are applied to it. */
  configPath: string;
  /** The install root (`releases/<version>`, `current`): software-update jobs need it. */
  installRoot?: string;
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
}

/** Parent → window process. */
export type ToWindow =
  | WindowStart
  | { type: 'abort' }
  | {
      type: 'reply';
      id: number;
      records?: StoredRecord[];
      value?: unknown;
      error?: { code: string; message: string };
    };

/** The window process's last message: how the window ended (`jobsError`: its jobs could not be set up). */
export interface WindowResultMessage {
  type: 'result';
  result: WindowReport & { jobsError?: { code: string; message: string } };
}

/** Window process → parent: outbox and host requests, then the result. */
export type FromWindow =
  | { type: 'read'; id: number; afterSeq: number; limit: number; maxBytes: number }
  | { type: 'remove'; id: number; firstSeq: number; lastSeq: number }
  | { type: 'state'; id: number }
  | { type: 'desired'; id: number; desired: JsonObject; version: number }
  | { type: 'events'; id: number }
  | { type: 'removeEvents'; id: number; eventIds: number[] }
  | { type: 'reload'; id: number }
  | { type: 'health'; id: number }
  | { type: 'restart'; id: number }
  | WindowResultMessage;

/** The parent's side of the host requests (see WindowHost in @attache/uplink). */
export interface WindowHostServer {
  reportState(): Promise<JsonObject>;
  applyDesired(desired: JsonObject, version: number): Promise<SettingsOutcome>;
  pendingEvents(): Promise<JsonObject[]>;
  removeEvents(eventIds: number[]): Promise<void>;
  /** Re-reads and validates the config file and restarts the adapters on it (config-update jobs). */
  reload(): Promise<void>;
  /** Whether the gateway runs healthy on the config last reloaded. */
  health(): Promise<HealthReport>;
  /** Ends the gateway after this window so that its supervisor restarts it (software-update jobs). */
  restartAfterWindow(): Promise<void>;
}

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
