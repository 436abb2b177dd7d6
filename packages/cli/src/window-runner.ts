import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LevelCache } from '@attache/cache';
import {
  type AttacheConfig,
  GatewayError,
  isGatewayError,
  type Logger,
  type UplinkConfig,
  type WindowResult,
} from '@attache/core';
import type { FromWindow, ToWindow } from './window-protocol.js';

const lastWindowKey = 'lastWindow';

/** What the broker acknowledged during a window, as the gateway counts it from the removes. */
type Acked = Pick<WindowResult, 'records' | 'messages' | 'bytes' | 'firstSeq' | 'lastSeq'>;
const workerPath = fileURLToPath(new URL('./window-worker.js', import.meta.url));
/** Past the window's own deadline, how long a window process may take before it is killed. */
const killGraceMs = 30_000;

/**
 * Opens connectivity windows over one cache: one at a time (a request while one is open joins it),
 * each in a short-lived child process (see window-worker.ts), each result kept in the cache's state
 * for `attache status`.
 */
export class WindowRunner {
  readonly #cache: LevelCache;
  readonly #config: AttacheConfig;
  readonly #log: Logger;
  #current: Promise<WindowResult> | undefined;
  #abort: (() => void) | undefined;

  constructor(options: { config: AttacheConfig; cache: LevelCache; logger: Logger }) {
    this.#cache = options.cache;
    this.#config = options.config;
    this.#log = options.logger.child({ module: 'window' });
  }

  get configured(): boolean {
    return this.#config.uplink !== undefined;
  }

  get open(): boolean {
    return this.#current !== undefined;
  }

  /** Opens a window now, or joins the one already open. Rejects ATTACHE_UPLINK_NOT_CONFIGURED without an uplink. */
  run(): Promise<WindowResult> {
    const uplink = this.#config.uplink;
    if (!uplink) {
      return Promise.reject(
        new GatewayError('ATTACHE_UPLINK_NOT_CONFIGURED', 'the config has no uplink section'),
      );
    }
    this.#current ??= this.#window(uplink).finally(() => {
      this.#current = undefined;
      this.#abort = undefined;
    });
    return this.#current;
  }

  /** Ends an open window early (unacknowledged records stay in the cache) and waits for it. */
  async close(): Promise<void> {
    this.#abort?.();
    await this.#current?.catch(() => undefined);
  }

  /** The last window's result, from the cache. */
  last(): Promise<WindowResult | undefined> {
    return this.#cache.getState<WindowResult>(lastWindowKey);
  }

  async #window(uplink: UplinkConfig): Promise<WindowResult> {
    const result = await this.#inChild(uplink);
    await this.#cache.setState(lastWindowKey, result);
    return result;
  }

  /** Runs the window in a child process, serving its outbox requests from the cache. */
  #inChild(uplink: UplinkConfig): Promise<WindowResult> {
    const openedAt = new Date().toISOString();
    const acked: Acked = { records: 0, messages: 0, bytes: 0, firstSeq: null, lastSeq: null };
    const served = new Map<number, number>();
    const child = fork(workerPath, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // The window process may die at any moment: a send into its closed channel is expected then
    // (EPIPE), and must never become an uncaught 'error' that stops the gateway.
    child.on('error', (err) => this.#log.warn({ err }, 'window process channel error'));
    const send = (message: ToWindow) => {
      if (child.connected)
        child.send(message, (err) => err && this.#log.debug({ err }, 'window process gone'));
    };
    this.#abort = () => send({ type: 'abort' });
    const limitMs = (uplink.window.maxDurationSeconds + uplink.connectTimeoutMs / 1000) * 1000 + killGraceMs;
    const killer = setTimeout(() => {
      this.#log.error({ pid: child.pid, limitMs }, 'window process overran its deadline: killed');
      child.kill('SIGKILL');
    }, limitMs);

    return new Promise<WindowResult>((resolve) => {
      let result: WindowResult | undefined;
      child.on('message', (message: FromWindow) => {
        if (message.type === 'result') {
          result = message.result;
          return;
        }
        this.#serve(message, served, acked).then(
          (records) => send({ type: 'reply', id: message.id, records }),
          (err: unknown) => {
            const code = isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL';
            send({ type: 'reply', id: message.id, error: { code, message: (err as Error).message } });
          },
        );
      });
      child.once('exit', (code, signal) => {
        clearTimeout(killer);
        if (result) return resolve(result);
        // The window process died (a crash in native code, killed): what it had acknowledged is counted here.
        const message = `window process ended (${signal ?? `exit ${code}`}) before reporting`;
        this.#log.error({ code, signal }, message);
        resolve({
          openedAt,
          closedAt: new Date().toISOString(),
          outcome: 'failed',
          ...acked,
          error: { code: 'ATTACHE_INTERNAL', message },
        });
      });
      send({
        type: 'start',
        gatewayId: this.#config.gateway.id,
        uplink,
        logLevel: this.#config.log.level,
      } satisfies ToWindow);
    }).finally(() => this.#drop(child));
  }

  async #serve(message: Exclude<FromWindow, { type: 'result' }>, served: Map<number, number>, acked: Acked) {
    if (message.type === 'read') {
      const records = await this.#cache.read(message);
      for (const r of records) served.set(r.seq, r.json.length);
      return records;
    }
    await this.#cache.remove(message.firstSeq, message.lastSeq);
    acked.messages++;
    for (const [seq, bytes] of served) {
      if (seq < message.firstSeq || seq > message.lastSeq) continue;
      served.delete(seq);
      acked.records++;
      acked.bytes += bytes;
      acked.firstSeq = Math.min(acked.firstSeq ?? seq, seq);
      acked.lastSeq = Math.max(acked.lastSeq ?? seq, seq);
    }
    return [];
  }

  #drop(child: ChildProcess): void {
    child.removeAllListeners('message');
    child.removeAllListeners('exit');
    if (child.connected) child.disconnect();
  }
}
