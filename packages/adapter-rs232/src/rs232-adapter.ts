import type {
  AdapterState,
  AdapterStatus,
  DeviceAdapter,
  Logger,
  ProtocolDriver,
  RandomSource,
  ReadingSink,
  Rs232DeviceConfig,
  SinkRefusing,
} from '@attache/core';
import { Backoff, GatewayError, nullLogger } from '@attache/core';
import { SerialPort } from 'serialport';
import { AdapterReport } from './adapter-report.js';
import { AstmSession } from './astm-session.js';
import { DriverSession, type Presence } from './driver-session.js';
import { LineSession } from './line-session.js';
import type { SerialLink, SerialPortClass, SerialSession } from './session.js';

export type { SerialPortClass } from './session.js';

/** Options of {@link Rs232Adapter}. */
export interface Rs232AdapterOptions {
  /** The device's config, with the schema's defaults applied (`validateConfig`). */
  device: Rs232DeviceConfig;
  /** Receives every reading, called in arrival order (up to 64 calls in flight); see ReadingSink. */
  sink: ReadingSink;
  /** True while the sink would refuse readings: an ASTM analyzer's ENQ is then answered busy. Default never. */
  refusing?: SinkRefusing;
  /** Default `nullLogger`. The adapter logs through a child `{ module: 'adapter-rs232', deviceId, port }`. */
  logger?: Logger;
  /** Default serialport's `SerialPort`. */
  portClass?: SerialPortClass;
  /** Random spread of the reconnect back-off, 0-1 (the gateway passes `gateway.retryJitter`). Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
  /** The protocol of a device that must be asked (`medibus`, `intellivue`): runs its sessions on the port. */
  driver?: ProtocolDriver;
}

type Port = SerialLink;

/** Longest wait between reconnect attempts, ms. */
const maxReconnectMs = 30_000;

function closePort(port: Port): Promise<void> {
  return new Promise((resolve) => {
    port.close(() => resolve());
  });
}

function openPort(port: Port): Promise<void> {
  return new Promise((resolve, reject) => {
    port.open((err) => (err ? reject(err) : resolve()));
  });
}

function createSession(
  options: Rs232AdapterOptions,
  report: AdapterReport,
  presence: Presence,
): SerialSession {
  const { device, sink, refusing = () => false } = options;
  const ctx = { device, sink, refusing, report };
  const { format } = device;
  if (options.driver !== undefined) return new DriverSession(ctx, options.driver, presence);
  if (format.kind === 'astm') return new AstmSession(ctx, format);
  if (format.kind === 'kv-line' || format.kind === 'regex-line') return new LineSession(ctx, format);
  throw new TypeError(`"driver" is required for format ${format.kind}`);
}

/**
 * Reads a device on a serial port in one of three formats: `kv-line` and `regex-line` (ASCII
 * lines, see LineSession) or `astm` (E1381/E1394 lab analyzers, see AstmSession), or through a
 * `driver` for devices that must be asked (MEDIBUS, IntelliVue; see DriverSession). `start()` resolves
 * after the first open attempt, also when the port is missing: it keeps retrying with back-off
 * (`port.reconnectMs` doubling up to 30 s). Readings go to the sink in arrival order; `stop()`
 * resolves once the port is closed and every frame already read went through the sink.
 */
export class Rs232Adapter implements DeviceAdapter {
  readonly deviceId: string;
  readonly #device: Rs232DeviceConfig;
  readonly #log: Logger;
  readonly #PortClass: SerialPortClass;
  readonly #report: AdapterReport;
  readonly #session: SerialSession;
  #state: AdapterState = 'stopped';
  #since = new Date().toISOString();
  #running = false;
  #port: Port | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #backoff: Backoff;
  #connecting: Promise<void> = Promise.resolve();

  /** @throws TypeError when a `regex-line` pattern is not a valid regular expression. */
  constructor(options: Rs232AdapterOptions) {
    this.deviceId = options.device.id;
    this.#device = options.device;
    this.#backoff = new Backoff({
      initialMs: options.device.port.reconnectMs,
      maxMs: Math.max(maxReconnectMs, options.device.port.reconnectMs),
      ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
      ...(options.random ? { random: options.random } : {}),
    });
    this.#PortClass = options.portClass ?? SerialPort;
    this.#log = (options.logger ?? nullLogger).child({
      module: 'adapter-rs232',
      deviceId: options.device.id,
      port: options.device.port.path,
    });
    this.#report = new AdapterReport(this.#log);
    this.#session = createSession(options, this.#report, (answering) => {
      // A polled device that stops answering is lost although its port is open.
      if (this.#port !== undefined) this.#setState(answering ? 'connected' : 'disconnected');
    });
  }

  /** Resolves after the first attempt to open the port, whether or not it succeeded. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#backoff.reset();
    this.#setState('starting');
    this.#connecting = this.#connect();
    await this.#connecting;
  }

  /** Cancels retries, closes the port and awaits the sink calls of every frame already read. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#retryTimer);
    await this.#connecting;
    if (this.#port) await closePort(this.#port);
    await this.#session.drained();
    await this.#session.close();
    this.#setState('stopped');
  }

  /** The adapter's state and counters (a snapshot). */
  status(): AdapterStatus {
    const lastError = this.#report.lastError;
    return {
      deviceId: this.deviceId,
      adapter: 'rs232',
      state: this.#state,
      since: this.#since,
      ...this.#report.counts,
      ...(lastError ? { lastError: { ...lastError } } : {}),
    };
  }

  /**
   * A serial port appeared: when waiting to reconnect, tries now with the back-off reset and returns
   * true; returns false when connected, connecting or stopped.
   */
  rescan(): boolean {
    if (!this.#running || this.#retryTimer === undefined) return false;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#backoff.reset();
    this.#log.info('port rescan: trying the port now');
    this.#connecting = this.#connect();
    return true;
  }

  async #connect(): Promise<void> {
    const { path, baudRate, dataBits, parity, stopBits } = this.#device.port;
    const port = new this.#PortClass({
      path,
      baudRate,
      dataBits,
      parity,
      stopBits,
      autoOpen: false,
      endOnClose: true,
    });
    try {
      await openPort(port);
    } catch (err) {
      this.#disconnected(new GatewayError('ATTACHE_PORT_NOT_OPEN', `cannot open ${path}`, { cause: err }));
      return;
    }
    if (!this.#running) {
      await closePort(port);
      return;
    }
    this.#attach(port);
  }

  #attach(port: Port): void {
    port.on('error', (err: Error) => this.#log.warn({ err }, 'serial port error'));
    port.once('close', (err: Error | null) => this.#closed(port, err));
    this.#session.attach(port);
    this.#port = port;
    this.#backoff.reset();
    this.#setState('connected');
  }

  #closed(port: Port, err: Error | null): void {
    if (this.#port === port) this.#port = undefined;
    if (!this.#running) return;
    const path = this.#device.port.path;
    this.#disconnected(
      new GatewayError('ATTACHE_PORT_NOT_OPEN', `${path} closed`, { cause: err ?? undefined }),
    );
  }

  #disconnected(error: GatewayError): void {
    this.#report.lastError = { code: error.code, message: error.message };
    this.#setState('disconnected');
    if (!this.#running) return;
    const delay = this.#backoff.next();
    this.#log.warn({ err: error, retryInMs: delay }, 'serial port unavailable, will retry');
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connecting = this.#connect();
    }, delay);
  }

  #setState(state: AdapterState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = new Date().toISOString();
    this.#log.info({ state }, 'adapter state');
  }
}
