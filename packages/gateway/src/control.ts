import { chmod, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { GatewayError, isGatewayError, type Logger } from '@attache/core';

/** Linux limits a Unix socket path to 108 bytes including the terminating NUL. */
const maxSocketPath = 107;

/**
 * The methods a running gateway answers on its control socket: `params` as the client sent them
 * (undefined when none), `notify` sends an event line (e.g. progress) before the answer, `closed`
 * aborts when the client goes (a method that streams until then, such as `watch`, ends on it).
 */
export type ControlHandler = (
  method: string,
  params: unknown,
  notify: (event: object) => void,
  closed: AbortSignal,
) => Promise<unknown>;

interface ControlRequest {
  id: number;
  method: string;
  params?: unknown;
}

/** Options of {@link controlRequest}. */
export interface ControlRequestOptions {
  params?: object;
  /** Receives the gateway's event lines (progress); each one restarts the timeout. */
  onEvent?: (event: unknown) => void;
}

/**
 * The control socket of a running gateway: a Unix socket (mode 0600, so only the service's user and
 * root may connect) speaking newline-delimited JSON: a request `{id, method, params?}`, then
 * event lines `{id, event}` when the method reports progress, then one answer `{id, result}` or
 * `{id, error: {code, message}}`.
 */
export class ControlServer {
  readonly #path: string;
  readonly #handler: ControlHandler;
  readonly #log: Logger;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(options: { path: string; handler: ControlHandler; logger: Logger }) {
    this.#path = options.path;
    this.#handler = options.handler;
    this.#log = options.logger;
  }

  /** Listens; a stale socket file left by a crashed gateway is replaced. */
  async start(): Promise<void> {
    if (Buffer.byteLength(this.#path) > maxSocketPath) {
      const message = `makes the control socket path longer than ${maxSocketPath} bytes: choose a shorter directory`;
      throw new GatewayError('ATTACHE_CONFIG_INVALID', `gateway.dataDir ${message}`, {
        issues: [{ path: '/gateway/dataDir', message }],
      });
    }
    await rm(this.#path, { force: true });
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.#path, 0o600);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.#path, { force: true });
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    const closed = new AbortController();
    socket.on('close', () => {
      this.#sockets.delete(socket);
      closed.abort();
    });
    socket.on('error', (err) => this.#log.debug({ err }, 'control client error'));
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        void this.#answer(socket, line, closed.signal);
      }
      if (buffer.length > 65536) socket.destroy();
    });
  }

  async #answer(socket: Socket, line: string, closed: AbortSignal): Promise<void> {
    let request: ControlRequest;
    try {
      request = JSON.parse(line) as ControlRequest;
    } catch {
      socket.write(
        `${JSON.stringify({ id: null, error: { code: 'ATTACHE_MALFORMED', message: 'not JSON' } })}\n`,
      );
      return;
    }
    let answer: object;
    try {
      const notify = (event: object) => {
        if (!socket.destroyed) socket.write(`${JSON.stringify({ id: request.id, event })}\n`);
      };
      answer = {
        id: request.id,
        result: await this.#handler(String(request.method), request.params, notify, closed),
      };
    } catch (err) {
      const code = isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL';
      answer = { id: request.id, error: { code, message: (err as Error).message } };
    }
    if (!socket.destroyed) socket.write(`${JSON.stringify(answer)}\n`);
  }
}

/**
 * Sends one request to a running gateway and resolves with its result. Rejects GatewayError
 * `ATTACHE_CONTROL_UNAVAILABLE` when no gateway listens there, `ATTACHE_CANCELED` when the gateway
 * closes the connection without answering (it stopped), `ATTACHE_TIMEOUT` after `timeoutMs`,
 * or with the gateway's own error code. `timeoutMs` counts from the request or the latest event.
 */
export function controlRequest(
  path: string,
  method: string,
  timeoutMs: number,
  options: ControlRequestOptions = {},
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffer = '';
    const expire = () => {
      socket.destroy();
      reject(
        new GatewayError('ATTACHE_TIMEOUT', `control request "${method}" timed out after ${timeoutMs} ms`),
      );
    };
    let timer = setTimeout(expire, timeoutMs);
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    socket.setEncoding('utf8');
    socket.on('connect', () =>
      socket.write(`${JSON.stringify({ id: 1, method, params: options.params })}\n`),
    );
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      let answer: { result?: unknown; event?: unknown; error?: { code: string; message: string } } = {};
      for (; nl >= 0; nl = buffer.indexOf('\n')) {
        answer = JSON.parse(buffer.slice(0, nl)) as typeof answer;
        buffer = buffer.slice(nl + 1);
        if (!('event' in answer)) break;
        clearTimeout(timer);
        timer = setTimeout(expire, timeoutMs);
        options.onEvent?.(answer.event);
      }
      if (nl < 0) return;
      if (answer.error) {
        const { code, message } = answer.error;
        finish(() => reject(new GatewayError(code as GatewayError['code'], message)));
      } else {
        finish(() => resolve(answer.result));
      }
    });
    socket.on('close', () =>
      // The gateway stopped while answering: unlike "no gateway", this must not fall back to a local window.
      finish(() =>
        reject(
          new GatewayError('ATTACHE_CANCELED', 'the gateway closed the control connection without answering'),
        ),
      ),
    );
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const absent = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      finish(() =>
        reject(
          absent
            ? new GatewayError('ATTACHE_CONTROL_UNAVAILABLE', 'no running gateway on the control socket', {
                cause: err,
              })
            : err,
        ),
      );
    });
  });
}
