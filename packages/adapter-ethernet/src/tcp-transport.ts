import { connect, createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { AdapterState, Logger, RandomSource, TcpEndpoint } from '@attache/core';
import { Backoff, GatewayError } from '@attache/core';
import { type AllowList, unmapAddress } from './allow-list.js';
import { bindAddressFor, type InterfaceTable } from './bind-address.js';

/** Longest wait between reconnect (or re-listen) attempts, ms. */
const maxRetryMs = 30_000;
/** TCP keep-alive probe delay, ms: the kernel notices a vanished peer even while we wait. */
const keepAliveMs = 30_000;

/** Connection counters of one transport. */
export interface ConnectionCounts {
  /** Open now. */
  connections: number;
  connectionsAccepted: number;
  /** Closed at once: peer not on the allow-list, or over `maxConnections`. */
  connectionsRefused: number;
  /** Closed by the idle timeout. */
  idleClosed: number;
}

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  endpoint: TcpEndpoint;
  /** Listen mode: who may connect (required there). */
  allow?: AllowList;
  /** A connection was accepted or established: attach the protocol to it. */
  onConnection: (socket: Socket, remote: string) => void;
  onState: (state: AdapterState, error?: GatewayError) => void;
  log: Logger;
  /** Listen mode without `endpoint.host`: the interfaces to pick the bind address from; default `os.networkInterfaces`. */
  interfaces?: () => InterfaceTable;
  /** Random spread of the reconnect (re-listen) back-off, 0-1. Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
}

/**
 * The TCP side of an Ethernet device: a listener (allow-list, connection limit) or a client
 * (reconnect with back-off), with an idle timeout on every connection. Sockets allow half-open so
 * that replies can still be written after the peer's FIN.
 */
export class TcpTransport {
  readonly counts: ConnectionCounts = {
    connections: 0,
    connectionsAccepted: 0,
    connectionsRefused: 0,
    idleClosed: 0,
  };
  readonly #o: TcpTransportOptions;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #running = false;
  readonly #backoff: Backoff;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TcpTransportOptions) {
    this.#o = options;
    const { reconnectMs } = options.endpoint;
    this.#backoff = new Backoff({
      initialMs: reconnectMs,
      maxMs: Math.max(maxRetryMs, reconnectMs),
      ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
      ...(options.random ? { random: options.random } : {}),
    });
  }

  /** Resolves after the first attempt to listen or connect, whether or not it succeeded. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#backoff.reset();
    await (this.#o.endpoint.mode === 'listen' ? this.#listen() : this.#connect());
  }

  /** Stops listening and reconnecting. Open connections are left to their sessions to close. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #listen(): Promise<void> {
    const { port, maxConnections, allow = [] } = this.#o.endpoint;
    const host = this.#o.endpoint.host ?? bindAddressFor(allow, (this.#o.interfaces ?? networkInterfaces)());
    if (host === undefined) {
      // Not yet up (DHCP at boot), or an allow-list no single interface covers: retried with back-off.
      this.#retry(
        new GatewayError(
          'ATTACHE_PORT_NOT_OPEN',
          `cannot listen on port ${port}: no local interface is on the network of endpoint.allow; set endpoint.host`,
        ),
      );
      return Promise.resolve();
    }
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket, maxConnections));
    return new Promise((resolve) => {
      server.once('error', (err) => {
        this.#retry(
          new GatewayError('ATTACHE_PORT_NOT_OPEN', `cannot listen on port ${port}`, { cause: err }),
        );
        resolve();
      });
      server.listen({ port, host }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.#o.log.error({ err }, 'listener error'));
        this.#server = server;
        if (!this.#running) server.close();
        else {
          this.#o.log.info({ host, port }, 'listening');
          this.#o.onState('connected');
        }
        resolve();
      });
    });
  }

  #accept(socket: Socket, maxConnections: number): void {
    const remote = unmapAddress(socket.remoteAddress ?? '');
    const allowed = this.#o.allow?.allows(socket.remoteAddress) ?? false;
    if (!allowed || this.#sockets.size >= maxConnections || !this.#running) {
      this.counts.connectionsRefused++;
      const reason = allowed ? 'too many connections' : 'peer not on the allow-list';
      this.#o.log.warn({ remote, reason, refused: this.counts.connectionsRefused }, 'connection refused');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#track(socket, remote);
  }

  #connect(): Promise<void> {
    const { host = 'localhost', port } = this.#o.endpoint;
    const socket = connect({ host, port, allowHalfOpen: true });
    return new Promise((resolve) => {
      socket.once('connect', () => {
        this.#backoff.reset();
        this.#track(socket, `${host}:${port}`);
        this.#o.onState('connected');
        resolve();
      });
      let failure: Error | undefined;
      // Errors after the connection was tracked are logged by #track; 'close' always follows.
      socket.on('error', (err) => {
        failure = err;
      });
      socket.once('close', () => {
        resolve();
        if (!this.#running) return;
        const message = `connection to ${host}:${port} ${failure ? 'failed' : 'closed'}`;
        this.#retry(new GatewayError('ATTACHE_PORT_NOT_OPEN', message, { cause: failure }));
      });
    });
  }

  #track(socket: Socket, remote: string): void {
    const { idleTimeoutSeconds } = this.#o.endpoint;
    this.#sockets.add(socket);
    this.counts.connectionsAccepted++;
    this.counts.connections = this.#sockets.size;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveMs);
    if (idleTimeoutSeconds > 0) socket.setTimeout(idleTimeoutSeconds * 1000);
    socket.on('timeout', () => {
      this.counts.idleClosed++;
      this.#o.log.warn({ remote, idleTimeoutSeconds }, 'idle connection closed');
      socket.destroy();
    });
    socket.on('error', (err) => this.#o.log.warn({ err, remote }, 'connection error'));
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.counts.connections = this.#sockets.size;
      this.#o.log.info({ remote, connections: this.#sockets.size }, 'connection closed');
    });
    this.#o.log.info({ remote, connections: this.#sockets.size }, 'connection opened');
    this.#o.onConnection(socket, remote);
  }

  #retry(error: GatewayError): void {
    this.#o.onState('disconnected', error);
    if (!this.#running) return;
    const delay = this.#backoff.next();
    this.#o.log.warn({ err: error, retryInMs: delay }, 'endpoint unavailable, will retry');
    this.#timer = setTimeout(() => {
      if (!this.#running) return;
      void (this.#o.endpoint.mode === 'listen' ? this.#listen() : this.#connect());
    }, delay);
  }
}
