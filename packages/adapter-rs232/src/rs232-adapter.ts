import { stat } from 'node:fs/promises';
import type {
  Clock,
  ClockTimer,
  Logger,
  ProtocolDriver,
  ProtocolSession,
  RandomSource,
  ReadingSink,
  Rs232DeviceConfig,
  SinkRefusing,
} from '@attache/core';
import { AdapterBase, Backoff, GatewayError, nullLogger, systemClock } from '@attache/core';
import { SerialPort } from 'serialport/dist/serialport.js';
import { type SerialPortClass, type SerialPortInstance, serialLink } from './serial-link.js';

export type { SerialPortClass } from './serial-link.js';

/** Options of {@link Rs232Adapter}. */
export interface Rs232AdapterOptions {
  /** The device's config, with the schema's defaults applied (`validateConfig`). */
  device: Rs232DeviceConfig;
  /** The device's protocol (`LineDriver`, `AstmDriver`, `Hl7Driver`, …); a new session per opened port. */
  driver: ProtocolDriver;
  /** Receives every reading, in arrival order; see ReadingSink. */
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
  /** Timers of the reconnect back-off and of the protocol session. Default `systemClock`. */
  clock?: Clock;
}

/** Longest wait between reconnect attempts, ms. */
const maxReconnectMs = 30_000;

/**
 * How often an open port's device file is looked for, ms. The kernel's hangup of a port whose device
 * went away does not always reach the read (on a pty whose other end closed, about 1 close in 16
 * left the port open and silent here): a device file gone, or another device under its path, closes
 * the port, and it is reconnected as after any close.
 */
export const presenceCheckMs = 2000;

/** The device number behind `path`, undefined when there is none. */
function deviceAt(path: string): Promise<number | undefined> {
  return stat(path).then(
    (info) => info.rdev,
    () => undefined,
  );
}

function closePort(port: SerialPortInstance): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) resolve();
    else port.close(() => resolve());
  });
}

function openPort(port: SerialPortInstance): Promise<void> {
  return new Promise((resolve, reject) => {
    port.open((err) => (err ? reject(err) : resolve()));
  });
}

/**
 * A device on a serial port, speaking whatever protocol its driver implements. `start()` resolves
 * after the first open attempt, also when the port is missing: it keeps retrying with back-off
 * (`port.reconnectMs` doubling up to 30 s). Each opened port gets a new protocol session; `stop()`
 * resolves once the port is closed and every reading already handed to the sink has settled.
 */
export class Rs232Adapter extends AdapterBase {
  readonly #device: Rs232DeviceConfig;
  readonly #driver: ProtocolDriver;
  readonly #sink: ReadingSink;
  readonly #refusing: SinkRefusing;
  readonly #PortClass: SerialPortClass;
  readonly #backoff: Backoff;
  readonly #sessions = new Set<ProtocolSession>();
  #running = false;
  #port: SerialPortInstance | undefined;
  #retryTimer: ClockTimer | undefined;
  #presenceTimer: ClockTimer | undefined;
  #connecting: Promise<void> = Promise.resolve();

  constructor(options: Rs232AdapterOptions) {
    const { device } = options;
    super({
      deviceId: device.id,
      adapter: 'rs232',
      log: (options.logger ?? nullLogger).child({
        module: 'adapter-rs232',
        deviceId: device.id,
        port: device.port.path,
      }),
      clock: options.clock ?? systemClock,
    });
    this.#device = device;
    this.#driver = options.driver;
    this.#sink = options.sink;
    this.#refusing = options.refusing ?? (() => false);
    this.#backoff = new Backoff({
      initialMs: device.port.reconnectMs,
      maxMs: Math.max(maxReconnectMs, device.port.reconnectMs),
      ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
      ...(options.random ? { random: options.random } : {}),
    });
    this.#PortClass = options.portClass ?? SerialPort;
  }

  /** Resolves after the first attempt to open the port, whether or not it succeeded. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#backoff.reset();
    this.setState('starting');
    this.#connecting = this.#connect();
    await this.#connecting;
  }

  /** Cancels retries, closes the port and awaits the sink calls of every frame already read. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    this.#presenceTimer?.cancel();
    this.#presenceTimer = undefined;
    await this.#connecting;
    if (this.#port) await closePort(this.#port);
    await Promise.all([...this.#sessions].map((session) => session.drained()));
    await this.#driver.close();
    this.setState('stopped');
  }

  /**
   * A serial port appeared: when waiting to reconnect, tries now with the back-off reset and returns
   * true; returns false when connected, connecting or stopped.
   */
  rescan(): boolean {
    if (!this.#running || this.#retryTimer === undefined) return false;
    this.#retryTimer.cancel();
    this.#retryTimer = undefined;
    this.#backoff.reset();
    this.log.info('port rescan: trying the port now');
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

  #attach(port: SerialPortInstance): void {
    const session = this.#driver.open(serialLink(port), this.sessionContext(this.#sink, this.#refusing));
    this.#sessions.add(session);
    port.on('error', (err: Error) => this.log.warn({ err }, 'serial port error'));
    port.on('data', (chunk: Buffer) => session.receive(chunk));
    port.once('close', (err: Error | null) => {
      this.#presenceTimer?.cancel();
      this.#presenceTimer = undefined;
      session.end();
      void session.drained().then(() => this.#sessions.delete(session));
      this.#closed(port, err);
    });
    this.#port = port;
    this.#backoff.reset();
    this.setState('connected');
    void this.#watchPresence(port);
  }

  /** Closes `port` once its device file is gone or names another device (see presenceCheckMs). */
  async #watchPresence(port: SerialPortInstance): Promise<void> {
    const path = this.#device.port.path;
    const opened = await deviceAt(path);
    // Nothing to compare with (a port that is no device file): the close event alone tells.
    if (opened === undefined) return;
    const check = async (): Promise<void> => {
      this.#presenceTimer = undefined;
      const now = await deviceAt(path);
      if (this.#port !== port || !this.#running) return;
      if (now === opened) {
        this.#presenceTimer = this.clock.setTimeout(() => void check(), presenceCheckMs);
        return;
      }
      this.log.warn({ path }, 'the device file of the serial port is gone: closing the port');
      await closePort(port);
    };
    if (this.#port === port && this.#running) {
      this.#presenceTimer = this.clock.setTimeout(() => void check(), presenceCheckMs);
    }
  }

  /** A polled device's silence counts only while its port is open: a closed port is already `disconnected`. */
  protected override presence(answering: boolean): void {
    if (this.#port !== undefined) super.presence(answering);
  }

  #closed(port: SerialPortInstance, err: Error | null): void {
    if (this.#port === port) this.#port = undefined;
    if (!this.#running) return;
    const path = this.#device.port.path;
    this.#disconnected(
      new GatewayError('ATTACHE_PORT_NOT_OPEN', `${path} closed`, { cause: err ?? undefined }),
    );
  }

  #disconnected(error: GatewayError): void {
    this.setState('disconnected', error);
    if (!this.#running) return;
    const delay = this.#backoff.next();
    this.log.warn({ err: error, retryInMs: delay }, 'serial port unavailable, will retry');
    this.#retryTimer = this.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connecting = this.#connect();
    }, delay);
  }
}
