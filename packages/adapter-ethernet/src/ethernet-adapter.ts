import type { Socket } from 'node:net';
import type {
  AdapterState,
  AdapterStatus,
  DeviceAdapter,
  EthernetDeviceConfig,
  GatewayError,
  Logger,
  RandomSource,
  ReadingSink,
  SinkRefusing,
} from '@attache/core';
import { nullLogger } from '@attache/core';
import { parseKvLine, RegexLineParser } from '@attache/line-formats';
import { type AllowList, parseAllowList } from './allow-list.js';
import { AstmSession } from './astm-session.js';
import { ReadingDelivery } from './delivery.js';
import { Hl7Session } from './hl7-session.js';
import { LineSession } from './line-session.js';
import type { StreamSession } from './session.js';
import { type ConnectionCounts, TcpTransport } from './tcp-transport.js';

/** Options of {@link EthernetAdapter}. */
export interface EthernetAdapterOptions {
  /** The device's config, with the schema's defaults applied (`validateConfig`). */
  device: EthernetDeviceConfig;
  /** Receives every message or line, in arrival order per connection (up to 64 calls in flight each). */
  sink: ReadingSink;
  /** True while the sink would refuse readings: an ASTM analyzer's ENQ is then answered busy. Default never. */
  refusing?: SinkRefusing;
  /** Default `nullLogger`. The adapter logs through a child `{ module: 'adapter-ethernet', deviceId, endpoint }`. */
  logger?: Logger;
  /** Random spread of the reconnect back-off, 0-1 (the gateway passes `gateway.retryJitter`). Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
  /**
   * A monotonic clock in ms for the rate limits of its logs (junk bytes are logged at most every
   * 10 s). Default CLOCK_MONOTONIC (core's `monotonicMs`).
   */
  clock?: () => number;
}

/** `AdapterStatus` plus the connection counters and the junk bytes discarded. */
export interface EthernetAdapterStatus extends AdapterStatus, ConnectionCounts {
  /** Bytes received outside any MLLP frame, discarded. */
  junkBytes: number;
}

/** ACK control ids are unique per process: a prefix from the start time, then a counter. */
let ackCounter = 0;
const ackPrefix = `ATT${Date.now().toString(36).toUpperCase()}`;
function nextControlId(): string {
  ackCounter++;
  return `${ackPrefix}${ackCounter}`;
}

/**
 * A device on a TCP socket: HL7 v2 over MLLP, ASTM, or ASCII lines; the gateway listens or connects
 * (see the package README). `start()` resolves after the first listen/connect attempt and keeps
 * retrying on failure; `stop()` resolves once every connection is closed and every sink call already
 * made has settled and its reply was written.
 */
export class EthernetAdapter implements DeviceAdapter {
  readonly deviceId: string;
  readonly #device: EthernetDeviceConfig;
  readonly #log: Logger;
  readonly #delivery: ReadingDelivery;
  readonly #allow: AllowList | undefined;
  readonly #openSession: (socket: Socket) => StreamSession;
  readonly #sessions = new Set<StreamSession>();
  #transport: TcpTransport | undefined;
  #state: AdapterState = 'stopped';
  #since = new Date().toISOString();
  #portError: GatewayError | undefined;
  readonly #jitter: Pick<EthernetAdapterOptions, 'jitter' | 'random'>;
  readonly #refusing: SinkRefusing;

  /** @throws GatewayError `ATTACHE_CONFIG_INVALID` for a bad `endpoint.allow` entry or `format.pattern`. */
  constructor(options: EthernetAdapterOptions) {
    const { device } = options;
    this.deviceId = device.id;
    this.#device = device;
    const { mode, host, port } = device.endpoint;
    this.#log = (options.logger ?? nullLogger).child({
      module: 'adapter-ethernet',
      deviceId: device.id,
      endpoint: `${mode} ${host ?? 'auto'}:${port}`,
    });
    this.#delivery = new ReadingDelivery(device.id, options.sink, this.#log, options.clock);
    this.#refusing = options.refusing ?? (() => false);
    this.#jitter = { jitter: options.jitter, random: options.random };
    this.#allow = mode === 'listen' ? parseAllowList(device.endpoint.allow ?? []) : undefined;
    this.#openSession = this.#sessionFactory();
  }

  /** Resolves once listening (or connected), or after the first failed attempt; retries go on. */
  async start(): Promise<void> {
    if (this.#transport !== undefined) return;
    this.#setState('starting');
    this.#transport = new TcpTransport({
      endpoint: this.#device.endpoint,
      ...(this.#allow ? { allow: this.#allow } : {}),
      onConnection: (socket) => this.#attach(socket),
      onState: (state, error) => {
        this.#portError = error;
        this.#setState(state);
      },
      log: this.#log,
      ...(this.#jitter.jitter === undefined ? {} : { jitter: this.#jitter.jitter }),
      ...(this.#jitter.random ? { random: this.#jitter.random } : {}),
    });
    await this.#transport.start();
  }

  /** Stops listening/reconnecting, closes every connection after its pending replies, awaits sink calls. */
  async stop(): Promise<void> {
    const transport = this.#transport;
    if (transport === undefined) return;
    this.#transport = undefined;
    const stopping = transport.stop();
    await Promise.all([...this.#sessions].map((session) => session.close()));
    await stopping;
    this.#setState('stopped');
  }

  /** A snapshot of the state and counters. */
  status(): EthernetAdapterStatus {
    const { junkBytes, ...counts } = this.#delivery.counts;
    const lastError = this.#delivery.lastError ?? this.#portError;
    return {
      deviceId: this.deviceId,
      adapter: 'ethernet',
      state: this.#state,
      since: this.#since,
      ...counts,
      ...(this.#transport?.counts ?? {
        connections: 0,
        connectionsAccepted: 0,
        connectionsRefused: 0,
        idleClosed: 0,
      }),
      junkBytes,
      ...(lastError ? { lastError: { code: lastError.code, message: lastError.message } } : {}),
    };
  }

  #attach(socket: Socket): void {
    const session = this.#openSession(socket);
    this.#sessions.add(session);
    void session.closed.then(() => this.#sessions.delete(session));
  }

  #sessionFactory(): (socket: Socket) => StreamSession {
    const format = this.#device.format;
    const delivery = this.#delivery;
    const log = this.#log;
    switch (format.kind) {
      case 'hl7-mllp':
        return (socket) => new Hl7Session(socket, { format, delivery, log, nextControlId });
      case 'astm':
        return (socket) => new AstmSession(socket, { format, delivery, log, refusing: this.#refusing });
      case 'kv-line':
        return (socket) =>
          new LineSession(socket, {
            parse: (line) => ({ protocol: 'kv-line', ...parseKvLine(line, format) }),
            delivery,
          });
      case 'regex-line': {
        const parser = new RegexLineParser(format);
        return (socket) =>
          new LineSession(socket, {
            parse: (line) => ({ protocol: 'regex-line', markers: [], ...parser.parse(line) }),
            delivery,
          });
      }
    }
  }

  #setState(state: AdapterState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = new Date().toISOString();
    this.#log.info({ state }, 'adapter state');
  }
}
