import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger, RandomSource, WindowConfig } from '@attache/core';
import { Backoff, nullLogger } from '@attache/core';
import { currentOrNextSlot, type DailySlot, parseSlot } from './schedule.js';

/** The time source of the scheduler; tests inject a fake one. */
export interface SchedulerClock {
  /** Wall-clock ms since the epoch (local time zone applies to schedules). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Which policy asked for a window. `manual` (attache sync) does not go through the scheduler. */
export type WindowTrigger = 'schedule' | 'interval' | 'network' | 'always' | 'button';

/** A window the scheduler asks for. */
export interface WindowRequest {
  trigger: WindowTrigger;
  /** The window's deadline from now, in ms. */
  maxDurationMs: number;
  /** Always-connected: stay open once drained. */
  linger: boolean;
}

/** Options of {@link WindowScheduler}. */
export interface WindowSchedulerOptions {
  window: WindowConfig;
  /** Opens (or joins) a window; resolves its outcome when it ends. Rejections are logged. */
  open(request: WindowRequest): Promise<{ outcome: string } | undefined>;
  /** For the `network` policy: true when a route to the endpoint exists. */
  routeCheck?: () => Promise<boolean>;
  clock?: SchedulerClock;
  logger?: Logger;
  /** Random spread of the always-connected policy's back-off after a failed window, 0-1. Default 0. */
  retryJitter?: number;
  /** Draws the jitter (`window.jitterSeconds`, `retryJitter`). Default `Math.random`. */
  random?: RandomSource;
}

const maxBackoffMs = 300_000;
const firstBackoffMs = 5000;

/**
 * Opens windows by the configured policies, combined: daily schedules in local time, an interval,
 * the network coming up, always-connected, and a push button (a command whose output lines are
 * presses, e.g. gpiomon). `stop()` cancels every timer and the button command.
 */
export class WindowScheduler {
  readonly #open: WindowSchedulerOptions['open'];
  readonly #routeCheck: (() => Promise<boolean>) | undefined;
  readonly #clock: SchedulerClock;
  readonly #log: Logger;
  #window: WindowConfig;
  #slots: DailySlot[] = [];
  readonly #timers = new Map<string, unknown>();
  #button: ChildProcess | undefined;
  #lastPress = -Infinity;
  #routeUp = false;
  readonly #random: RandomSource;
  readonly #backoff: Backoff;
  #running = false;

  constructor(options: WindowSchedulerOptions) {
    this.#open = options.open;
    this.#routeCheck = options.routeCheck;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? nullLogger).child({ module: 'scheduler' });
    this.#window = options.window;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({
      initialMs: firstBackoffMs,
      maxMs: maxBackoffMs,
      jitter: options.retryJitter ?? 0,
      random: this.#random,
    });
  }

  /** A random delay of up to `window.jitterSeconds`, and at most `limitMs`, ms. */
  #jitterMs(limitMs: number): number {
    const most = Math.min(this.#window.jitterSeconds * 1000, Math.max(0, limitMs));
    return Math.round(this.#random() * most);
  }

  /** The policies in force, e.g. `["schedule 02:00-02:20", "interval 3600 s"]` (manual is always on). */
  policies(): string[] {
    const w = this.#window;
    const out = w.schedules.map((s) => `schedule ${s}`);
    if (w.everySeconds > 0) out.push(`interval ${w.everySeconds} s`);
    if (w.onNetworkUp) out.push('network');
    if (w.alwaysConnected) out.push('always');
    if (w.button) out.push('button');
    out.push('manual');
    return out;
  }

  /** Starts every configured policy. Throws a TypeError for a malformed schedule. */
  start(): void {
    this.#slots = this.#window.schedules.map(parseSlot);
    this.#running = true;
    this.#armSchedule();
    this.#armInterval();
    if (this.#window.onNetworkUp) this.#pollRoute();
    if (this.#window.alwaysConnected) this.#always();
    if (this.#window.button) this.#startButton();
    this.#log.info({ policies: this.policies() }, 'window policies');
  }

  /** Replaces the window settings (e.g. applied from the shadow) and restarts the policies. */
  update(window: WindowConfig): void {
    this.stop();
    this.#window = window;
    this.start();
  }

  /** Cancels every timer and ends the button command; an open window is not affected. */
  stop(): void {
    this.#running = false;
    for (const handle of this.#timers.values()) this.#clock.clearTimeout(handle);
    this.#timers.clear();
    this.#button?.kill('SIGTERM');
    this.#button = undefined;
  }

  #after(name: string, ms: number, fn: () => void): void {
    const previous = this.#timers.get(name);
    if (previous !== undefined) this.#clock.clearTimeout(previous);
    this.#timers.set(
      name,
      this.#clock.setTimeout(
        () => {
          this.#timers.delete(name);
          if (this.#running) fn();
        },
        Math.max(0, ms),
      ),
    );
  }

  async #request(trigger: WindowTrigger, maxDurationMs?: number, linger = false) {
    const max = this.#window.maxDurationSeconds * 1000;
    const request = { trigger, maxDurationMs: Math.min(max, maxDurationMs ?? max), linger };
    try {
      return await this.#open(request);
    } catch (err) {
      this.#log.error({ err, trigger }, 'window failed to run');
      return undefined;
    }
  }

  /** Opens a window in the current slot, or waits for the next slot's start. */
  #armSchedule(): void {
    const occ = currentOrNextSlot(this.#slots, this.#clock.now());
    if (!occ) return;
    const now = this.#clock.now();
    // Spread over at most half the slot (of what is left of it when it is in progress).
    const wait =
      occ.startMs > now
        ? occ.startMs - now + this.#jitterMs((occ.endMs - occ.startMs) / 2)
        : this.#jitterMs((occ.endMs - now) / 2);
    this.#after('schedule', wait, () => {
      const left = occ.endMs - this.#clock.now();
      this.#log.info({ slot: occ.slot.text }, 'scheduled window');
      void this.#request('schedule', left).then(() => {
        // One window per slot occurrence: wait for the next one.
        this.#after('schedule', occ.endMs - this.#clock.now(), () => this.#armSchedule());
      });
    });
  }

  #armInterval(): void {
    const every = this.#window.everySeconds;
    if (every <= 0) return;
    this.#after('interval', every * 1000 + this.#jitterMs((every * 1000) / 2), () => {
      void this.#request('interval').then(() => this.#armInterval());
    });
  }

  #pollRoute(): void {
    const check = this.#routeCheck;
    if (!check) return;
    void check().then((up) => {
      const appeared = up && !this.#routeUp;
      this.#routeUp = up;
      const next = () =>
        this.#after('network', this.#window.networkPollSeconds * 1000, () => this.#pollRoute());
      if (appeared && this.#running) {
        this.#log.info('route to the endpoint appeared');
        void this.#request('network').then(next);
      } else next();
    });
  }

  #always(): void {
    void this.#request('always', undefined, true).then((result) => {
      const failed = result === undefined || result.outcome === 'failed';
      if (!failed) this.#backoff.reset();
      const delay = failed ? this.#backoff.next() : 0;
      this.#after('always', delay, () => this.#always());
    });
  }

  #startButton(): void {
    const button = this.#window.button;
    if (!button) return;
    const [program, ...args] = button.command;
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.#button = child;
    let rest = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.#press(button.debounceMs);
    });
    child.once('error', (err) => this.#log.error({ err }, 'button command could not start'));
    child.once('close', (code) => {
      if (this.#button !== child || !this.#running) return;
      this.#log.warn({ exitCode: code }, 'button command ended: restarting in 5 s');
      this.#after('button', firstBackoffMs, () => this.#startButton());
    });
  }

  #press(debounceMs: number): void {
    const now = this.#clock.now();
    if (now - this.#lastPress < debounceMs) return;
    this.#lastPress = now;
    this.#log.info('button pressed');
    void this.#request('button');
  }
}
