import type { Socket } from 'node:net';
import type {
  Clock,
  EthernetDeviceConfig,
  GatewayError,
  Logger,
  ProtocolDriver,
  RandomSource,
  ReadingSink,
  SinkRefusing,
} from '@attache/core';
import { AdapterBase, nullLogger, systemClock } from '@attache/core';
import { type AllowList, parseAllowList } from './allow-list.js';
import { TcpLink } from './tcp-link.js';
import { type ConnectionCounts, TcpTransport } from './tcp-transport.js';

/** Options of {@link EthernetAdapter}. */
export interface EthernetAdapterOptions {
  /** The device's config, with the schema's defaults applied (`validateConfig`). */
  device: EthernetDeviceConfig;
  /** The device's protocol (`Hl7Driver`, `AstmDriver`, `LineDriver`, …); a new session per connection. */
  driver: ProtocolDriver;
  /** Receives every reading, in arrival order per connection. */
  sink: ReadingSink;
  /** True while the sink would refuse readings: an ASTM analyzer's ENQ is then answered busy. Default never. */
  refusing?: SinkRefusing;
  /** Default `nullLogger`. The adapter logs through a child `{ module: 'adapter-ethernet', deviceId, endpoint }`. */
  logger?: Logger;
  /** Random spread of the reconnect back-off, 0-1 (the gateway passes `gateway.retryJitter`). Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
  /** Timers of the protocol sessions and the rate limit of the junk log. Default `systemClock`. */
  clock?: Clock;
}

/** `AdapterStatus` plus the connection counters and the junk bytes discarded. */
export interface EthernetAdapterStatus extends ReturnType<AdapterBase['status']>, ConnectionCounts {
  /** Bytes received outside any protocol unit (before an MLLP start byte), discarded. */
  junkBytes: number;
}

const noConnections: ConnectionCounts = {
  connections: 0,
  connectionsAccepted: 0,
  connectionsRefused: 0,
  idleClosed: 0,
};

/**
 * A device on a TCP socket, speaking whatever protocol its driver implements; the gateway listens
 * (allow-list, connection limit) or connects (see the package README). `start()` resolves after the
 * first listen/connect attempt and keeps retrying on failure; `stop()` resolves once every
 * connection is closed and every sink call already made has settled and its reply was written.
 */
export class EthernetAdapter extends AdapterBase {
  readonly #device: EthernetDeviceConfig;
  readonly #driver: ProtocolDriver;
  readonly #sink: ReadingSink;
  readonly #refusing: SinkRefusing;
  readonly #allow: AllowList | undefined;
  readonly #links = new Set<TcpLink>();
  readonly #jitter: Pick<EthernetAdapterOptions, 'jitter' | 'random'>;
  #transport: TcpTransport | undefined;

  /** @throws GatewayError `ATTACHE_CONFIG_INVALID` for a bad `endpoint.allow` entry. */
  constructor(options: EthernetAdapterOptions) {
    const { device } = options;
    const { mode, host, port } = device.endpoint;
    super({
      deviceId: device.id,
      adapter: 'ethernet',
      log: (options.logger ?? nullLogger).child({
        module: 'adapter-ethernet',
        deviceId: device.id,
        endpoint: `${mode} ${host ?? 'auto'}:${port}`,
      }),
      clock: options.clock ?? systemClock,
    });
    this.#device = device;
    this.#driver = options.driver;
    this.#sink = options.sink;
    this.#refusing = options.refusing ?? (() => false);
    this.#jitter = { jitter: options.jitter, random: options.random };
    this.#allow = mode === 'listen' ? parseAllowList(device.endpoint.allow ?? []) : undefined;
  }

  /** Resolves once listening (or connected), or after the first failed attempt; retries go on. */
  async start(): Promise<void> {
    if (this.#transport !== undefined) return;
    this.setState('starting');
    this.#transport = new TcpTransport({
      endpoint: this.#device.endpoint,
      ...(this.#allow ? { allow: this.#allow } : {}),
      onConnection: (socket, remote) => this.#attach(socket, remote),
      onState: (state, error?: GatewayError) => this.setState(state, error),
      log: this.log,
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
    await Promise.all([...this.#links].map((link) => link.close()));
    await stopping;
    await this.#driver.close();
    this.setState('stopped');
  }

  /** A snapshot of the state and counters. */
  override status(): EthernetAdapterStatus {
    return super.status() as EthernetAdapterStatus;
  }

  protected override statusExtra(): object {
    return { ...(this.#transport?.counts ?? noConnections), junkBytes: this.report.junkBytes };
  }

  #attach(socket: Socket, remote: string): void {
    const link = new TcpLink(socket, remote, this.#driver, this.sessionContext(this.#sink, this.#refusing));
    this.#links.add(link);
    void link.closed.then(() => this.#links.delete(link));
  }
}
