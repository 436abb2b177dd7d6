import type { LevelCache } from '@attache/cache';
import type { AdapterStatus, Clock, ClockTimer, Logger, UplinkConfig } from '@attache/core';
import type { GatewayAdapter } from './adapters.js';
import { every } from './clock-timers.js';
import { type ClockWatch, checkTrustedTime, EventJournal, EventMonitor } from './window-events.js';

/**
 * How often the cache is checked for `cache.full` and dropped records (adapter changes are reported
 * as they happen, from their `state` events).
 */
const eventPollMs = 5000;

/**
 * The gateway's side of its events: the journal, the adapters' `state` events turned into device
 * events as they happen, and the cache checked every 5 s on the gateway's clock.
 */
export class GatewayEvents {
  readonly journal: EventJournal;
  readonly #monitor: EventMonitor;
  readonly #time: Clock;
  readonly #log: Logger;
  readonly #clock: ClockWatch;
  #timer: ClockTimer | undefined;
  /** The cache checks, one after the other (the last one at stop). */
  #polls: Promise<void> = Promise.resolve();
  #checking = false;
  /** Stops reporting the watched adapters' state changes. */
  #unwatch: () => void = () => {};

  constructor(options: {
    cache: LevelCache;
    gatewayId: string;
    clock: ClockWatch;
    time: Clock;
    logger: Logger;
  }) {
    this.#log = options.logger;
    this.#time = options.time;
    this.#clock = options.clock;
    this.journal = new EventJournal({
      cache: options.cache,
      gatewayId: options.gatewayId,
      clock: options.clock,
      logger: options.logger.child({ module: 'events' }),
    });
    this.#monitor = new EventMonitor({ journal: this.journal, cache: options.cache });
  }

  /**
   * Reports `adapters`' state changes as they happen (a device lost and back between two checks is
   * two events), instead of those watched before. Call before starting them.
   */
  watch(adapters: readonly GatewayAdapter[]): void {
    this.unwatch();
    const monitor = this.#monitor;
    const listener = (status: AdapterStatus) => monitor.deviceState(status);
    for (const adapter of adapters) adapter.on('state', listener);
    this.#unwatch = () => {
      for (const adapter of adapters) adapter.off('state', listener);
    };
  }

  /** Stops reporting the watched adapters' state changes (at a reload, at stop). */
  unwatch(): void {
    this.#unwatch();
    this.#unwatch = () => {};
  }

  /** Checks the cache now and every 5 s. */
  startChecks(): void {
    this.#checking = true;
    void this.#poll();
    this.#timer = every(this.#time, eventPollMs, () => void this.#poll());
  }

  /** No more checks on the timer (the first step of a stop). */
  stopChecks(): void {
    this.#timer?.cancel();
  }

  /**
   * Once the adapters stopped: no more device events; what changed since the last check (a drop
   * while stopping) and the device events being written are journaled. Before the cache closes.
   */
  async flush(): Promise<void> {
    this.unwatch();
    if (this.#checking) await this.#poll();
  }

  /**
   * Before a window connects (after its pre-hook, which may have synchronized the clock): records a
   * clock correction, then checks the clock against the endpoint's time (`uplink.trustedTime`).
   */
  async checkClock(uplink: UplinkConfig | undefined): Promise<void> {
    const correction = await this.#clock.correction();
    if (correction) await this.journal.add('clock.corrected', correction);
    if (uplink)
      await checkTrustedTime(uplink, this.#clock, this.journal, this.#log.child({ module: 'clock' }));
  }

  #poll(): Promise<void> {
    this.#polls = this.#polls
      .then(() => this.#monitor.poll())
      .catch((err: unknown) => this.#log.error({ err }, 'event monitor failed'));
    return this.#polls;
  }
}
