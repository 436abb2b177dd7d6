import type {
  AdapterStatus,
  Clock,
  ClockTimer,
  DeviceReading,
  Logger,
  ModbusDeviceConfig,
  ModbusProfile,
  RandomSource,
  ReadingSink,
} from '@attache/core';
import { AdapterBase, Backoff, isGatewayError, nullLogger, systemClock } from '@attache/core';
import { ChangeFilter } from './change-filter.js';
import type { ModbusClient } from './modbus-client.js';
import { type BlockResult, buildObservations } from './observations.js';
import { planReads, type ReadBlock } from './plan.js';

/** Options of {@link ModbusAdapter}. */
export interface ModbusAdapterOptions {
  /** The device's config, with the schema's defaults applied. */
  device: ModbusDeviceConfig;
  /** The device's register map (checked with checkModbusConfig). */
  profile: ModbusProfile;
  /** The device's bus, possibly shared with other adapters. */
  client: ModbusClient;
  /** Receives one reading per answered poll, in poll order. */
  sink: ReadingSink;
  /** Default `nullLogger`; child `{ module: 'adapter-modbus', deviceId, bus }`. */
  logger?: Logger;
  /** Random spread of a silent device's poll back-off, 0-1 (the gateway passes `gateway.retryJitter`). Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
  /** The poll schedule's timers and time. Default `systemClock`. */
  clock?: Clock;
}

/** AdapterStatus plus the polling counters. */
export interface ModbusAdapterStatus extends AdapterStatus {
  /** Polls started. */
  polls: number;
  /** Polls skipped because the previous one was still running when they were due. */
  missedPolls: number;
  /** Polls where no read block was answered (no reading). */
  unanswered: number;
  /**
   * Polls not attempted because the device stopped answering: after two polls in a row that timed
   * out it is polled every 2, 4, 8 … intervals (at most every 30 s), so it costs the other devices
   * on its bus its timeout that much less often; one answer ends the back-off.
   */
  skippedPolls: number;
  /** Answered polls not stored because nothing changed (`changesOnly`). */
  unchanged: number;
  /**
   * Values that their register's `scale` and `offset` made non-finite (±∞): stored as `unavailable`,
   * the poll's other values kept. A register map that does not fit the device.
   */
  outOfRange: number;
  /** Answers refused: a Modbus exception, a bad CRC or a byte count that disagrees with the request. */
  badAnswers: number;
}

/** Longest wait between polls of a device that does not answer, ms. */
const maxBackOffMs = 30_000;

/** A read that did not get an answer: the device is not there; the rest of the poll is skipped. */
function noAnswer(err: Error): boolean {
  return isGatewayError(err, 'ATTACHE_TIMEOUT') || isGatewayError(err, 'ATTACHE_PORT_NOT_OPEN');
}

/**
 * Polls one Modbus device every `pollIntervalMs` on a drift-free schedule and hands each answered
 * poll to the sink as one reading (see README). `start()` resolves at once; `stop()` resolves once
 * the poll in flight and every sink call ended.
 */
export class ModbusAdapter extends AdapterBase {
  readonly #device: ModbusDeviceConfig;
  readonly #plan: ReadBlock[];
  readonly #client: ModbusClient;
  readonly #sink: ReadingSink;
  readonly #filter: ChangeFilter | undefined;
  readonly #counts = {
    polls: 0,
    missedPolls: 0,
    unanswered: 0,
    skippedPolls: 0,
    unchanged: 0,
    outOfRange: 0,
    badAnswers: 0,
  };
  readonly #deliveries = new Set<Promise<void>>();
  readonly #outOfRangeLogged = new Set<string>();
  #running = false;
  #timer: ClockTimer | undefined;
  #polling: Promise<void> = Promise.resolve();
  #startMs = 0;
  #k = 0;
  /** Polls in a row that timed out (a bus that is down does not count: see #poll). */
  #silent = 0;
  /** A silent device's wait between polls, ms, in whole intervals: 2, 4, 8 … up to 30 s. */
  readonly #silentBackoff: Backoff;

  constructor(options: ModbusAdapterOptions) {
    super({
      deviceId: options.device.id,
      adapter: 'modbus',
      log: (options.logger ?? nullLogger).child({
        module: 'adapter-modbus',
        deviceId: options.device.id,
        bus: options.client.key,
      }),
      clock: options.clock ?? systemClock,
    });
    this.#device = options.device;
    const interval = options.device.pollIntervalMs;
    const most = Math.max(1, Math.floor(maxBackOffMs / interval));
    this.#silentBackoff = new Backoff({
      initialMs: Math.min(2, most) * interval,
      maxMs: most * interval,
      ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
      ...(options.random ? { random: options.random } : {}),
    });
    this.#plan = planReads(options.profile.registers);
    this.#client = options.client;
    this.#sink = options.sink;
    this.#filter = options.device.changesOnly ? new ChangeFilter(options.device.changesOnly) : undefined;
  }

  /** Starts polling (the first poll at once); resolves immediately. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#client.acquire();
    this.setState('starting');
    this.#startMs = this.clock.monotonicMs();
    this.#k = 0;
    this.#schedule();
  }

  /** Stops polling; resolves once the poll in flight and every sink call ended and the bus is released. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#timer?.cancel();
    await this.#polling;
    await Promise.all(this.#deliveries);
    await this.#client.release();
    this.setState('stopped');
  }

  /** The adapter's state and counters (a snapshot). */
  override status(): ModbusAdapterStatus {
    return super.status() as ModbusAdapterStatus;
  }

  protected override statusExtra(): object {
    return { ...this.#counts };
  }

  #schedule(): void {
    const due = this.#startMs + this.#k * this.#device.pollIntervalMs;
    this.#timer = this.clock.setTimeout(() => this.#tick(), Math.max(0, due - this.clock.monotonicMs()));
  }

  #tick(): void {
    this.#polling = this.#poll()
      .catch((err: unknown) => this.log.error({ err }, 'poll failed'))
      .finally(() => {
        if (!this.#running) return;
        // The next due time in the future; those passed while polling are missed.
        const interval = this.#device.pollIntervalMs;
        const next = Math.max(this.#k + 1, Math.ceil((this.clock.monotonicMs() - this.#startMs) / interval));
        this.#counts.missedPolls += next - this.#k - 1;
        const skip = this.#backOff(interval);
        this.#counts.skippedPolls += skip;
        this.#k = next + skip;
        this.#schedule();
      });
  }

  /**
   * Due polls to skip after this one: 0 while the device answers, then 1, 3, 7 … up to 30 s, each
   * shortened by the jitter (so devices that went silent together are not polled in step).
   */
  #backOff(interval: number): number {
    if (this.#silent < 2) {
      this.#silentBackoff.reset();
      return 0;
    }
    if (this.#silent === 2) {
      this.log.info({ timeoutMs: this.#device.timeoutMs }, 'device does not answer: polling it less often');
    }
    return Math.max(0, Math.round(this.#silentBackoff.next() / interval) - 1);
  }

  async #poll(): Promise<void> {
    this.#counts.polls++;
    const results: BlockResult[] = [];
    let answered = false;
    let failure: Error | undefined;
    for (const block of this.#plan) {
      if (failure !== undefined && noAnswer(failure)) {
        results.push({ block, error: failure });
        continue;
      }
      try {
        const { table, address, count } = block;
        const { unitId, timeoutMs } = this.#device;
        results.push({
          block,
          response: await this.#client.read({ unitId, table, address, count, timeoutMs }),
        });
        answered = true;
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        if (isGatewayError(failure, 'ATTACHE_MALFORMED')) {
          answered = true;
          this.#counts.badAnswers++;
        }
        results.push({ block, error: failure });
      }
    }
    this.#report(failure);
    if (!answered) {
      // A bus that is down fails fast and has its own back-off: only a silent device backs off.
      this.#silent = isGatewayError(failure, 'ATTACHE_TIMEOUT') ? this.#silent + 1 : 0;
      this.#counts.unanswered++;
      this.setState('disconnected');
      return;
    }
    this.#silent = 0;
    this.setState('connected');
    this.report.frame();
    this.#deliver(results);
  }

  /** Logs a read failure once per change of error; keeps the last one for status(). */
  #report(failure: Error | undefined): void {
    if (failure === undefined) return;
    if (this.report.lastError?.message !== failure.message) {
      this.log.warn({ err: failure }, 'read failed');
    }
    this.report.error(failure);
  }

  #deliver(results: BlockResult[]): void {
    const observations = buildObservations(results, (value) => {
      this.#counts.outOfRange++;
      // Once per register: a map that does not fit the device would log on every poll.
      if (this.#outOfRangeLogged.has(value.register.name)) return;
      this.#outOfRangeLogged.add(value.register.name);
      this.log.warn(
        { register: value.register.name, outOfRange: this.#counts.outOfRange },
        'scale and offset make the value non-finite: marked unavailable',
      );
    });
    const now = this.clock.monotonicMs();
    if (this.#filter !== undefined && !this.#filter.accept(observations, now)) {
      this.#counts.unchanged++;
      return;
    }
    const raw = Buffer.concat(results.flatMap((r) => ('response' in r ? [r.response.bytes] : [])));
    const reading: DeviceReading = {
      deviceId: this.deviceId,
      adapter: 'modbus',
      protocol: this.#client.protocol,
      receivedAt: this.clock.now(),
      monotonicMs: now,
      fields: [],
      markers: [],
      raw,
      observations,
    };
    const delivery: Promise<void> = this.#store(reading).finally(() => this.#deliveries.delete(delivery));
    this.#deliveries.add(delivery);
  }

  async #store(reading: DeviceReading): Promise<void> {
    try {
      await this.#sink(reading);
      this.report.stored();
    } catch (err) {
      this.#filter?.reset();
      const malformed = isGatewayError(err, 'ATTACHE_MALFORMED');
      if (malformed) this.report.counts.malformed++;
      else this.report.counts.refused++;
      this.report.error(err);
      this.log.warn({ err }, malformed ? 'reading refused as malformed' : 'reading refused by the sink');
    }
  }
}
