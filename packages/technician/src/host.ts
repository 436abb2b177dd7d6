import type { AdapterStatus, BacklogStats, ConfigIssue, Observation, WindowResult } from '@attache/core';

/**
 * One reading as the page shows it: the normalized record after de-identification, reduced to what
 * a technician checks (device, time, codes, values, units, status). No patient or specimen token,
 * no instrument identity, never the raw frame.
 */
export interface LiveReading {
  deviceId: string;
  /** RFC 3339, the gateway's clock. */
  capturedAt: string;
  /** `name`: the code in words (`SpO₂`), or the code itself when it has no name here. */
  observations: (Pick<Observation, 'code' | 'system' | 'value' | 'unit' | 'status'> & { name: string })[];
}

/** What the page shows of the gateway; `attache status` holds the same facts. */
export interface TechnicianStatus {
  gatewayId: string;
  startedAt: string | null;
  adapters: AdapterStatus[];
  backlog: BacklogStats;
  lastWindow: WindowResult | null;
  uplink: { configured: boolean; windowOpen: boolean };
  /** True when the page can export to a USB stick (`cache.exportRecipientFile` is set). */
  canExport?: boolean;
  /** The provisioning state in words (`provisioned`, `unprovisioned`, …), when the box knows it. */
  provisioning?: string;
  /** The uplink certificate's end date (RFC 3339), when there is one. */
  certificateNotAfter?: string;
  /** True when the system clock is synchronized (NTP). */
  clockSynchronized?: boolean;
}

/** A serial port as the page lists it. */
export interface PortInfo {
  /** The device node (`/dev/ttyUSB0`). */
  path: string;
  /** Its stable names (`/dev/serial/by-id/…`, `/dev/attache/…`): what a config should name. */
  links: string[];
  /** The configured device reading it, if any. */
  usedBy: string | null;
  /** Other processes holding it (`pid 812 (minicom)`). */
  heldBy: string[];
}

/** What a probe heard at one setting (counts only: never the bytes, which may hold patient data). */
export interface ProbeProgress {
  /** `9600 8N1`. */
  setting: string;
  bytes: number;
  lines: number;
  keyValueLines: number;
  error?: string;
}

/** How a probe ended. */
export interface ProbeOutcome {
  path: string;
  /** The protocol recognized in words, null when nothing was. */
  recognized: string | null;
  /** The best setting, when one was recognized. */
  setting: string | null;
  /** The KEY=VALUE keys heard with numbers or status words (identifiers left out). */
  keys: string[];
  /** A `devices` entry built from what was heard, to edit and apply; null when nothing fits. */
  suggested: Record<string, unknown> | null;
  /** Why the port could not be listened to, in words. */
  problem?: string;
}

/** A config checked as `attache config validate` checks it: every problem at its field. */
export interface ConfigCheck {
  valid: boolean;
  issues: ConfigIssue[];
  /** Advice that does not make it invalid (`/dev/ttyUSB0` may change name). */
  warnings: ConfigIssue[];
}

/** How applying a config ended. */
export interface ConfigApplied {
  /** True once the gateway runs healthy on it; false when refused (nothing changed) or rolled back. */
  applied: boolean;
  issues: ConfigIssue[];
  /** Why it was not applied, in words. */
  reason?: string;
}

/** One check of `attache doctor`. */
export interface DoctorCheck {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  /** What was found (never readings, patient data or key material). */
  detail: string;
  /** What to do, for warn and fail. */
  action?: string;
}

/** How an export to the USB stick ended. */
export interface ExportOutcome {
  /** The file written on the stick, when it was. */
  file?: string;
  /** SHA-256 (hex) of the file written onto the stick, to compare with a copy taken off it. */
  sha256?: string;
  records: number;
  /** Why nothing was written, in words. */
  error?: string;
  /** With `error`: its stable code (`ATTACHE_NO_STICK`, `ATTACHE_STICK_REFUSED`, …). */
  code?: string;
}

/**
 * How an export is going: records staged so far (of about `total`), then, once staged, bytes
 * written to the stick (of `totalBytes`).
 */
export interface ExportProgress {
  records: number;
  total: number;
  bytes?: number;
  totalBytes?: number;
}

/**
 * What the technician page needs of the running gateway. The gateway implements it; the page
 * never touches the cache, the adapters or the config itself.
 */
export interface TechnicianHost {
  /** The gateway's status now. */
  status(): Promise<TechnicianStatus>;
  /**
   * Calls `listener` with every reading once it is durably stored; returns the unsubscribe
   * function. The listener must not throw (the page catches its own errors).
   */
  onReading(listener: (reading: LiveReading) => void): () => void;
  /** Opens a connectivity window now (or joins the open one) and resolves with its result. */
  openWindow(): Promise<WindowResult>;
  /** The serial ports there are, with their stable names and who uses them. */
  ports(): Promise<PortInfo[]>;
  /** Listens on `path` for `seconds` (never transmits), reporting each setting as it is done. */
  probe(path: string, seconds: number, onProgress: (progress: ProbeProgress) => void): Promise<ProbeOutcome>;
  /** The config file in force, parsed. */
  config(): Promise<unknown>;
  /** Checks `config` as `attache config validate` does, on this box. */
  checkConfig(config: unknown): Promise<ConfigCheck>;
  /**
   * Applies `config` as a config-update job is applied: checked, written (the previous kept), the
   * gateway reloaded on it and health-checked, rolled back when unhealthy.
   */
  applyConfig(config: unknown): Promise<ConfigApplied>;
  /**
   * Writes the backlog to the USB stick as `attache cache export` does (the gateway keeps reading
   * and uploading), reporting records staged, then bytes written; resolves with the file, or with why not.
   */
  exportToStick(onProgress: (progress: ExportProgress) => void): Promise<ExportOutcome>;
  /** The checks of `attache doctor` that need no network (files, certificate, clock, ports, disk, self-test). */
  doctor(): Promise<DoctorCheck[]>;
}
