import { EventEmitter } from 'node:events';
import type { AdapterState, AdapterStatus, DeviceAdapter, ReadingSink, SinkRefusing } from './contract.js';
import { DeviceReport } from './device-report.js';
import type { Logger } from './logger.js';
import type { Clock, SessionContext } from './session.js';

/** Events of every adapter (`adapter.on('state', …)`). */
export interface AdapterEventMap {
  /** The state changed (`connected`, `disconnected`, …); the status is a snapshot taken then. */
  state: [status: AdapterStatus];
}

/** Options of {@link AdapterBase}. */
export interface AdapterBaseOptions {
  deviceId: string;
  adapter: AdapterStatus['adapter'];
  /** The adapter's child logger (with `module` and `deviceId`). */
  log: Logger;
  clock: Clock;
}

/**
 * What every adapter shares: its state and `since`, one {@link DeviceReport} (counters with one
 * meaning each, the last error with a documented code), a `state` event on each change, and the
 * {@link SessionContext} its protocol sessions get. Transports subclass it and add their own status
 * fields with `statusExtra()`.
 */
export abstract class AdapterBase extends EventEmitter<AdapterEventMap> implements DeviceAdapter {
  readonly deviceId: string;
  protected readonly report: DeviceReport;
  protected readonly log: Logger;
  protected readonly clock: Clock;
  readonly #adapter: AdapterStatus['adapter'];
  #state: AdapterState = 'stopped';
  #since: string;

  constructor(options: AdapterBaseOptions) {
    super();
    this.deviceId = options.deviceId;
    this.#adapter = options.adapter;
    this.log = options.log;
    this.clock = options.clock;
    this.report = new DeviceReport(options.log, options.clock, (answering) => this.presence(answering));
    this.#since = new Date(options.clock.now()).toISOString();
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;

  /** The current state. */
  get state(): AdapterState {
    return this.#state;
  }

  /** The adapter's state and counters (a snapshot). */
  status(): AdapterStatus {
    const { lastError } = this.report;
    return {
      deviceId: this.deviceId,
      adapter: this.#adapter,
      state: this.#state,
      since: this.#since,
      ...this.report.counts,
      ...this.statusExtra(),
      ...(lastError ? { lastError: { ...lastError } } : {}),
    };
  }

  /** Fields a transport adds to its status (connection counters). Default none. */
  protected statusExtra(): object {
    return {};
  }

  /** Moves to `state` (no-op when already there); `error` becomes the last error. Emits `state`. */
  protected setState(state: AdapterState, error?: unknown): void {
    if (error !== undefined) this.report.error(error);
    if (state === this.#state) return;
    this.#state = state;
    this.#since = new Date(this.clock.now()).toISOString();
    this.log.info({ state }, 'adapter state');
    this.emit('state', this.status());
  }

  /**
   * A polled device stopped answering or answers again while its link stays open: it shows as
   * `disconnected` (the report keeps why as the last error) or `connected` again. Only between those
   * two states: a starting or stopped adapter stays so. Transports whose link can be gone override it.
   */
  protected presence(answering: boolean): void {
    if (answering && this.#state === 'disconnected') this.setState('connected');
    else if (!answering && this.#state === 'connected') this.setState('disconnected');
  }

  /** The context of a protocol session on one of this adapter's links. */
  protected sessionContext(sink: ReadingSink, refusing: SinkRefusing = () => false): SessionContext {
    return { deviceId: this.deviceId, sink, refusing, report: this.report, clock: this.clock };
  }
}
