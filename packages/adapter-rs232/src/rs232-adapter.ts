import type {
  AdapterState,
  AdapterStatus,
  DeviceAdapter,
  DeviceReading,
  KvLineFormat,
  Logger,
  ReadingSink,
  Rs232DeviceConfig,
} from '@attache/core';
import { GatewayError, isGatewayError, nullLogger } from '@attache/core';
import { SerialPort, type SerialPortMock } from 'serialport';
import { parseKvLine } from './kv-line.js';
import { type LineFrame, LineFramer } from './line-framer.js';

/** A serialport class: serialport's `SerialPort`, or `SerialPortMock` in tests. */
export type SerialPortClass = typeof SerialPort | typeof SerialPortMock;

/** Options of {@link Rs232Adapter}. */
export interface Rs232AdapterOptions {
  /** The device's config, with the schema's defaults applied (`validateConfig`). */
  device: Rs232DeviceConfig & { format: KvLineFormat };
  /** Receives every reading, called in arrival order (up to 64 calls in flight); see ReadingSink. */
  sink: ReadingSink;
  /** Default `nullLogger`. The adapter logs through a child `{ module: 'adapter-rs232', deviceId, port }`. */
  logger?: Logger;
  /** Default serialport's `SerialPort`. */
  portClass?: SerialPortClass;
}

type Port = InstanceType<SerialPortClass>;

/** Longest wait between reconnect attempts, ms. */
const maxReconnectMs = 30_000;
/** Lines waiting for the sink before the port is paused. */
const maxQueuedLines = 64;
/**
 * Sink calls in flight at once. Several in flight let the cache commit a burst of lines in one
 * synced write (group commit) instead of one fsync per line.
 */
const maxInFlight = 64;

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

/**
 * Reads a line-oriented ASCII device (KEY=VALUE lines) on a serial port. `start()` resolves after
 * the first open attempt, also when the port is missing: it keeps retrying with back-off
 * (`port.reconnectMs` doubling up to 30 s). Every line goes to the sink, called in arrival order;
 * `stop()` resolves once the port is closed and every line already read went through the sink.
 */
export class Rs232Adapter implements DeviceAdapter {
  readonly deviceId: string;
  readonly #device: Rs232DeviceConfig & { format: KvLineFormat };
  readonly #sink: ReadingSink;
  readonly #log: Logger;
  readonly #PortClass: SerialPortClass;
  #state: AdapterState = 'stopped';
  #since = new Date().toISOString();
  readonly #counts = { frames: 0, stored: 0, malformed: 0, refused: 0 };
  #lastError: { code: string; message: string } | undefined;
  #running = false;
  #port: Port | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryMs = 0;
  #connecting: Promise<void> = Promise.resolve();
  /** The consumer of the current framer, chained after the previous one so that order holds across reconnects. */
  #pump: Promise<void> = Promise.resolve();

  constructor(options: Rs232AdapterOptions) {
    this.deviceId = options.device.id;
    this.#device = options.device;
    this.#sink = options.sink;
    this.#PortClass = options.portClass ?? SerialPort;
    this.#log = (options.logger ?? nullLogger).child({
      module: 'adapter-rs232',
      deviceId: options.device.id,
      port: options.device.port.path,
    });
  }

  /** Resolves after the first attempt to open the port, whether or not it succeeded. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#retryMs = this.#device.port.reconnectMs;
    this.#setState('starting');
    this.#connecting = this.#connect();
    await this.#connecting;
  }

  /** Cancels retries, closes the port and awaits the sink calls of every line already read. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearTimeout(this.#retryTimer);
    await this.#connecting;
    if (this.#port) await closePort(this.#port);
    await this.#pump;
    this.#setState('stopped');
  }

  /** The adapter's state and counters (a snapshot). */
  status(): AdapterStatus {
    return {
      deviceId: this.deviceId,
      adapter: 'rs232',
      state: this.#state,
      since: this.#since,
      ...this.#counts,
      ...(this.#lastError ? { lastError: { ...this.#lastError } } : {}),
    };
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
    const { delimiter, maxLineBytes, reconnectMs } = this.#device.port;
    const framer = new LineFramer({ delimiter, maxLineBytes, maxLines: maxQueuedLines });
    framer.on('overlong', (bytes: number) => this.#discarded('line longer than maxLineBytes', bytes));
    framer.on('incomplete', (bytes: number) => this.#discarded('line cut off by the port closing', bytes));
    port.on('error', (err: Error) => this.#log.warn({ err }, 'serial port error'));
    port.once('close', (err: Error | null) => this.#closed(port, err));
    // pipe() pauses the port when the framer's buffer is full (maxQueuedLines lines waiting).
    port.pipe(framer);
    this.#port = port;
    this.#retryMs = reconnectMs;
    this.#setState('connected');
    const previous = this.#pump;
    this.#pump = previous.then(() => this.#consume(framer));
  }

  /** Calls the sink for each line in arrival order, with at most `maxInFlight` calls outstanding. */
  async #consume(framer: LineFramer): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for await (const frame of framer) {
      // #deliver calls the sink synchronously (before its first await), so calls keep line order.
      const delivery: Promise<void> = this.#deliver(frame as LineFrame).finally(() =>
        inFlight.delete(delivery),
      );
      inFlight.add(delivery);
      if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
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
    this.#lastError = { code: error.code, message: error.message };
    this.#setState('disconnected');
    if (!this.#running) return;
    const delay = this.#retryMs;
    this.#log.warn({ err: error, retryInMs: delay }, 'serial port unavailable, will retry');
    this.#retryTimer = setTimeout(() => {
      this.#connecting = this.#connect();
    }, delay);
    this.#retryMs = Math.min(delay * 2, maxReconnectMs);
  }

  async #deliver(frame: LineFrame): Promise<void> {
    this.#counts.frames++;
    let reading: DeviceReading;
    try {
      reading = {
        deviceId: this.deviceId,
        adapter: 'rs232',
        protocol: 'kv-line',
        receivedAt: frame.receivedAt,
        monotonicMs: frame.monotonicMs,
        ...parseKvLine(frame.line.toString('latin1'), this.#device.format),
        raw: frame.line,
      };
    } catch (err) {
      this.#malformed(err, frame.line.length);
      return;
    }
    try {
      await this.#sink(reading);
      this.#counts.stored++;
    } catch (err) {
      if (isGatewayError(err, 'ATTACHE_MALFORMED')) {
        this.#malformed(err, frame.line.length);
        return;
      }
      this.#counts.refused++;
      this.#lastError = {
        code: isGatewayError(err) ? err.code : 'ERROR',
        message: err instanceof Error ? err.message : String(err),
      };
      this.#log.warn({ err, refused: this.#counts.refused }, 'reading refused by the sink');
    }
  }

  /** A framing failure: counts as a frame and as malformed. */
  #discarded(reason: string, bytes: number): void {
    this.#counts.frames++;
    this.#malformed(new GatewayError('ATTACHE_MALFORMED', reason), bytes);
  }

  #malformed(err: unknown, bytes: number): void {
    this.#counts.malformed++;
    const reason = err instanceof Error ? err.message : String(err);
    this.#lastError = { code: 'ATTACHE_MALFORMED', message: reason };
    // Only the reason and the length: the line itself may carry patient data.
    this.#log.warn({ reason, bytes, malformed: this.#counts.malformed }, 'malformed line discarded');
  }

  #setState(state: AdapterState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = new Date().toISOString();
    this.#log.info({ state }, 'adapter state');
  }
}
