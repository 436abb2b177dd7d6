/**
 * Stable error codes. Code and tests branch on `err.code`, never on the message: codes stay
 * stable across releases, messages may change.
 */
export type ErrorCode =
  /** The config file failed validation; `issues` lists every error as path + message. */
  | 'ATTACHE_CONFIG_INVALID'
  /** The cache's database is held by another process (another `attache run`). */
  | 'ATTACHE_CACHE_LOCKED'
  /** The cache was used before `open()` resolved or after `close()`. */
  | 'ATTACHE_CACHE_CLOSED'
  /** A write to the cache failed (disk error, disk full); nothing of that write was stored. */
  | 'ATTACHE_CACHE_WRITE'
  /** The cache is at its configured bound (or the disk is full) and its policy is to refuse new data. */
  | 'ATTACHE_CACHE_FULL'
  /** The cache's key file is missing its owner-only permissions, or is malformed. */
  | 'ATTACHE_CACHE_KEY'
  /** A cached value failed authentication (tampered, or sealed under an unknown key): it was quarantined. */
  | 'ATTACHE_CACHE_TAMPERED'
  /** A frame or reading could not be parsed or mapped; it was not stored. */
  | 'ATTACHE_MALFORMED'
  /** A signature is missing, does not verify, or is by a key not trusted here (an export, a job manifest). */
  | 'ATTACHE_SIGNATURE'
  /** A validly signed job was refused: for another thing or group, expired, or a downgrade not signed as a rollback. */
  | 'ATTACHE_JOB_REFUSED'
  /** A file to be written exists and replacing it was not asked for (e.g. `cache export` without `--force`). */
  | 'ATTACHE_FILE_EXISTS'
  /** A serial port could not be opened or is not open. */
  | 'ATTACHE_PORT_NOT_OPEN'
  /** An operation did not finish in time; the message names the operation. */
  | 'ATTACHE_TIMEOUT'
  /** An operation was cut short because its component was stopped. */
  | 'ATTACHE_CANCELED'
  /** The uplink could not connect to the broker. */
  | 'ATTACHE_UPLINK_CONNECT'
  /**
   * Fleet provisioning by claim did not complete: the cloud refused it (the message gives its
   * reason) or it could not run (no serial number, claim missing); retried in the next window.
   */
  | 'ATTACHE_PROVISIONING'
  /** The broker refused a publish or the connection broke before its PUBACK. */
  | 'ATTACHE_UPLINK_PUBLISH'
  /** A connectivity window was requested while one is already open. */
  | 'ATTACHE_WINDOW_BUSY'
  /** The config has no `uplink` section, so no window can open. */
  | 'ATTACHE_UPLINK_NOT_CONFIGURED'
  /**
   * A window could not take AWS IoT Jobs (its key or CA file unreadable); its telemetry still went up.
   * Or the root release installer could not be asked or failed on the system: retried next window.
   */
  | 'ATTACHE_JOBS_UNAVAILABLE'
  /** No running gateway answers on the control socket. */
  | 'ATTACHE_CONTROL_UNAVAILABLE'
  /** The technician page refused a request: no session, an expired one, a wrong secret, or too many failed logins. */
  | 'ATTACHE_UNAUTHORIZED'
  /**
   * A file upload did not complete: the credentials provider or S3 refused it, or S3 confirmed
   * another checksum than the file's; the file stays on the gateway and is retried next window.
   */
  | 'ATTACHE_FILE_UPLOAD'
  /** No USB stick to write to: none plugged in (its device is absent), or no FAT filesystem on it. */
  | 'ATTACHE_NO_STICK'
  /** The USB stick refused a file: read-only or without room for it; nothing of the file was left on it. */
  | 'ATTACHE_STICK_REFUSED'
  /**
   * Root refused a file the service's side named or handed over (the running gateway's staged
   * export, its export-signing key, a delivered file's name, an entry of a release bundle the root
   * release installer unpacks): not a regular file of the service's own in its place (outside
   * it, a symlink, a hard link, a FIFO, another user's), or a name that leaves its directory.
   * Nothing of it was copied, written or removed.
   */
  | 'ATTACHE_UNSAFE_FILE'
  /** An unexpected failure (a bug or an unforeseen system error); the message says what. */
  | 'ATTACHE_INTERNAL';

/** One problem found in a config file. */
export interface ConfigIssue {
  /** JSON Pointer into the config, e.g. `/devices/0/port/baudRate`; `/` for the root. */
  path: string;
  /** What is wrong there. */
  message: string;
}

export interface GatewayErrorOptions {
  cause?: unknown;
  /** For ATTACHE_CONFIG_INVALID: every problem found. */
  issues?: ConfigIssue[];
}

/** The one error class of Attaché. */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: ErrorCode;
  readonly issues: ConfigIssue[];

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/** True when `err` is a GatewayError with `code` (or with any code when `code` is omitted). */
export function isGatewayError(err: unknown, code?: ErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}
