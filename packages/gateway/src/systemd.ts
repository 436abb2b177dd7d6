import { execFile } from 'node:child_process';
import { type Logger, nullLogger } from '@attache/core';

/** Options of {@link SystemdNotifier}. */
export interface SystemdNotifierOptions {
  /** Where `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` are read from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The PID announced as the service's main process (`systemd-notify --pid`). Default `process.pid`. */
  pid?: number;
  /** The `systemd-notify` executable (a name looked up in PATH, or a path). Default `systemd-notify`. */
  command?: string;
  /** Logs notifications that could not be sent (warn). Default: none. */
  logger?: Logger;
}

/** How long one `systemd-notify` may take before it is killed, ms. */
const notifyTimeoutMs = 10_000;

/**
 * Tells systemd about the gateway's life cycle for a `Type=notify` unit with `WatchdogSec=`: READY=1,
 * STOPPING=1 and WATCHDOG=1. Node has no unix datagram sockets, so each notification runs
 * `systemd-notify --pid=<pid> NAME=VALUE…`, which needs `NotifyAccess=all` in the unit (the sender is a
 * child process; systemd-notify waits until systemd has processed the message, so it does not race
 * its own exit). Does nothing when `$NOTIFY_SOCKET` is unset, i.e. when not started by systemd.
 */
export class SystemdNotifier {
  #env: NodeJS.ProcessEnv;
  #pid: number;
  #command: string;
  #log: Logger;
  #watchdog: NodeJS.Timeout | undefined;
  #lastStatus: string | undefined;

  constructor(options: SystemdNotifierOptions = {}) {
    this.#env = options.env ?? process.env;
    this.#pid = options.pid ?? process.pid;
    this.#command = options.command ?? 'systemd-notify';
    this.#log = options.logger ?? nullLogger;
  }

  /** True when systemd expects notifications (`$NOTIFY_SOCKET` is set). */
  get enabled(): boolean {
    return Boolean(this.#env.NOTIFY_SOCKET);
  }

  /**
   * Half of `$WATCHDOG_USEC` in ms (systemd's advice for the ping interval), or null when systemd set
   * no watchdog, or set it for another process (`$WATCHDOG_PID`), or notifications are off.
   */
  get watchdogIntervalMs(): number | null {
    const usec = Number(this.#env.WATCHDOG_USEC);
    const pid = this.#env.WATCHDOG_PID;
    if (!this.enabled || !Number.isFinite(usec) || usec <= 0) return null;
    if (pid !== undefined && pid !== '' && Number(pid) !== this.#pid) return null;
    return Math.max(1, Math.floor(usec / 2000));
  }

  /**
   * Sends `NAME=VALUE` assignments. Resolves true once systemd-notify succeeded, false when
   * notifications are off or sending failed (logged); never rejects, so a notification can never stop
   * the gateway.
   */
  notify(assignments: Record<string, string | number>): Promise<boolean> {
    if (!this.enabled) return Promise.resolve(false);
    const args = [`--pid=${this.#pid}`, ...Object.entries(assignments).map(([k, v]) => `${k}=${v}`)];
    return new Promise((resolve) => {
      execFile(this.#command, args, { env: this.#env, timeout: notifyTimeoutMs }, (err, _out, stderr) => {
        if (err) {
          this.#log.warn(
            { err, stderr: stderr.trim(), sent: Object.keys(assignments) },
            'systemd notification failed',
          );
        }
        resolve(!err);
      });
    });
  }

  /** READY=1: the gateway has started (cache open, adapters and control socket up); `status` as STATUS=. */
  ready(status = 'running'): Promise<boolean> {
    this.#lastStatus = status;
    return this.notify({ READY: 1, STATUS: status });
  }

  /**
   * STATUS=`text`, the line `systemctl status attache` shows. Sent only when it differs from the last
   * one sent (each notification is a process); resolves false when not sent.
   */
  status(text: string): Promise<boolean> {
    if (text === this.#lastStatus) return Promise.resolve(false);
    this.#lastStatus = text;
    return this.notify({ STATUS: text });
  }

  /** STOPPING=1: the gateway is shutting down. */
  stopping(): Promise<boolean> {
    return this.notify({ STOPPING: 1, STATUS: 'stopping' });
  }

  /**
   * Pings WATCHDOG=1 every {@link watchdogIntervalMs} until {@link stopWatchdog}; the timer does not
   * keep the process alive. Returns false (and does nothing) when systemd set no watchdog.
   */
  startWatchdog(): boolean {
    const interval = this.watchdogIntervalMs;
    if (interval === null || this.#watchdog) return interval !== null;
    this.#watchdog = setInterval(() => void this.notify({ WATCHDOG: 1 }), interval);
    this.#watchdog.unref();
    return true;
  }

  /** Stops the watchdog pings. */
  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }
}
