import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LevelCache } from '@attache/cache';
import {
  type AttacheConfig,
  type BacklogStats,
  GatewayError,
  isGatewayError,
  type Logger,
  type UplinkConfig,
} from '@attache/core';
import {
  type HookResult,
  routeUplinkConfig,
  runHook,
  type WindowReport,
  withRouteReports,
} from '@attache/uplink/policy';
import { openCache } from './open-cache.js';
import { provisioningDir } from './paths.js';
import {
  type FromWindow,
  failedWindow,
  type ToWindow,
  type UpdateTargets,
  type WindowHostServer,
} from './window-protocol.js';

const lastWindowKey = 'lastWindow';

export { provisioningDir };

/** A window as the gateway records it for `attache status` and the shadow. */
export interface WindowRecord extends WindowReport {
  /** What opened it: `manual` (attache sync) or a scheduler policy. */
  trigger: string;
  hooks?: { pre?: HookResult; post?: HookResult };
  /**
   * The windows of `uplink.routes`, by route name, run beside this one. `outcome` is then the worst of
   * all, and `error` this window's or else the first failed route's (its message names the route).
   */
  routes?: Record<string, WindowRecord>;
  /** The window could not take jobs (`ATTACHE_JOBS_UNAVAILABLE`): why. Its telemetry still went up. */
  jobsError?: { code: string; message: string };
}

/** What opens a window: `manual` or a scheduler policy, with its deadline. */
export interface WindowRunRequest {
  trigger: string;
  /** Default: `uplink.window.maxDurationSeconds` × 1000. */
  maxDurationMs?: number;
  linger?: boolean;
}

/** Options of {@link WindowRunner}. */
export interface WindowRunnerOptions {
  config: AttacheConfig;
  cache: LevelCache;
  logger: Logger;
  /** State, shadow settings and events for the window (a running gateway); omitted by an offline sync. */
  host?: WindowHostServer;
  /** Called after the pre-hook, before the window connects (e.g. to record a clock correction). */
  beforeConnect?: () => Promise<void>;
  /** What config-update and software-update jobs apply to (a running gateway, with `host`). */
  updates?: UpdateTargets;
  /** Opens the cache at `path` as a route's outbox. Default: the gateway's `openCache`. */
  openOutbox?: (path: string) => Promise<LevelCache>;
  /** Where the window process logs: 1 (stdout, default) or 2 (stderr, when stdout is a command's answer). */
  logFd?: 1 | 2;
}

/** One `uplink.routes` entry as the runner holds it: its outbox and the runner of its windows. */
interface RouteLane {
  devices: Set<string>;
  cache: LevelCache;
  runner: WindowRunner;
}

/** What the broker acknowledged during a window, as the gateway counts it from the removes. */
type Acked = Pick<WindowReport, 'records' | 'messages' | 'bytes' | 'firstSeq' | 'lastSeq'>;
const workerPath = fileURLToPath(new URL('./window-worker.js', import.meta.url));
/** Past the window's own deadline, how long a window process may take before it is killed. */
const killGraceMs = 30_000;

/**
 * Opens connectivity windows over one cache: one at a time (a request while one is open joins it),
 * each between the pre- and post-hook (the post-hook always runs), each in a short-lived child
 * process (see window-worker.ts), each result kept in the cache's state for `attache status`.
 */
export class WindowRunner {
  readonly #cache: LevelCache;
  #config: AttacheConfig;
  readonly #log: Logger;
  readonly #host: WindowHostServer | undefined;
  readonly #beforeConnect: (() => Promise<void>) | undefined;
  readonly #updates: UpdateTargets | undefined;
  #current: Promise<WindowRecord> | undefined;
  #abort: (() => void) | undefined;
  /** Set by close(): the gateway is stopping, so a window that ends now was interrupted. */
  #closing = false;
  readonly #openOutbox: (path: string) => Promise<LevelCache>;
  readonly #logFd: 1 | 2;
  #routes: Map<string, RouteLane> | undefined;

  constructor(options: WindowRunnerOptions) {
    this.#cache = options.cache;
    this.#config = options.config;
    this.#log = options.logger.child({ module: 'window' });
    this.#host = options.host;
    this.#beforeConnect = options.beforeConnect;
    this.#updates = options.updates;
    this.#logFd = options.logFd ?? 1;
    this.#openOutbox = options.openOutbox ?? ((path) => openCache(this.#config, options.logger, path));
  }

  /**
   * Opens the outbox of every `uplink.routes` entry (`<dataDir>/routes/<name>`, created when missing).
   * The routes were checked when the config was loaded (`checkConfig`).
   */
  async openRoutes(): Promise<void> {
    if (this.#routes) return;
    const routes = new Map<string, RouteLane>();
    const uplink = this.#config.uplink;
    for (const route of uplink?.routes ?? []) {
      const cache = await this.#openOutbox(join(this.#config.gateway.dataDir, 'routes', route.name));
      const config = {
        ...this.#config,
        jobs: undefined,
        uplink: routeUplinkConfig(uplink as UplinkConfig, route),
      };
      const logger = this.#log.child({ route: route.name });
      const runner = new WindowRunner({ config, cache, logger, logFd: this.#logFd });
      routes.set(route.name, { devices: new Set(route.devices), cache, runner });
    }
    this.#routes = routes;
  }

  /** The outbox of the route that takes `deviceId`'s records; undefined for the default route. */
  outboxFor(deviceId: string): LevelCache | undefined {
    for (const lane of this.#routes?.values() ?? []) if (lane.devices.has(deviceId)) return lane.cache;
    return undefined;
  }

  /** The backlog of every open route outbox, by route name (empty when there are none or not open). */
  async routeBacklogs(): Promise<Record<string, BacklogStats>> {
    const backlogs: Record<string, BacklogStats> = {};
    for (const [name, lane] of this.#routes ?? []) backlogs[name] = await lane.cache.stats();
    return backlogs;
  }

  /** Closes the route outboxes (after `close()`). */
  async closeRoutes(): Promise<void> {
    for (const lane of this.#routes?.values() ?? []) await lane.cache.close();
    this.#routes = undefined;
  }

  /** Runs a window of every route (beside the default window); resolves their results by name. */
  async #runRoutes(request: WindowRunRequest): Promise<Record<string, WindowRecord>> {
    const lanes = [...(this.#routes ?? [])];
    const results = await Promise.all(lanes.map(([, lane]) => lane.runner.run(request)));
    return Object.fromEntries(lanes.map(([name], i) => [name, results[i] as WindowRecord]));
  }

  get configured(): boolean {
    return this.#config.uplink !== undefined;
  }

  get open(): boolean {
    return this.#current !== undefined;
  }

  /** Uses `config` (e.g. with remote settings applied) from the next window on. */
  reconfigure(config: AttacheConfig): void {
    this.#config = config;
  }

  /**
   * Opens a window now, or joins the one already open. Rejects ATTACHE_UPLINK_NOT_CONFIGURED
   * without an uplink; otherwise resolves how the window ended.
   */
  run(request: WindowRunRequest = { trigger: 'manual' }): Promise<WindowRecord> {
    const uplink = this.#config.uplink;
    if (!uplink) {
      return Promise.reject(
        new GatewayError('ATTACHE_UPLINK_NOT_CONFIGURED', 'the config has no uplink section'),
      );
    }
    this.#current ??= this.#window(uplink, request).finally(() => {
      this.#current = undefined;
      this.#abort = undefined;
    });
    return this.#current;
  }

  /** Ends an open window early (unacknowledged records stay in the cache) and waits for it. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#abort?.();
    for (const lane of this.#routes?.values() ?? []) void lane.runner.close();
    await this.#current?.catch(() => undefined);
  }

  /** Resolves once no window is open (at once when none is). */
  async whenIdle(): Promise<void> {
    await this.#current?.catch(() => undefined);
  }

  /** The last window's result, from the cache. */
  last(): Promise<WindowRecord | undefined> {
    return this.#cache.getState<WindowRecord>(lastWindowKey);
  }

  async #window(uplink: UplinkConfig, request: WindowRunRequest): Promise<WindowRecord> {
    const { preHook, postHook } = uplink.window;
    const hooks: WindowRecord['hooks'] = {};
    let result: WindowReport;
    // An offline `attache sync` opens the route outboxes for this window only.
    const opened = this.#routes === undefined && uplink.routes.length > 0;
    const openedAt = new Date().toISOString();
    try {
      if (opened) await this.openRoutes();
      if (preHook) hooks.pre = await runHook(preHook, 'pre-hook', this.#log);
      await this.#beforeConnect?.().catch((err: unknown) =>
        this.#log.warn({ err }, 'before-connect step failed'),
      );
      const routed = this.#runRoutes(request);
      result = withRouteReports(await this.#inChild(uplink, request), await routed);
    } catch (err) {
      // A window that could not even start (a route's outbox, the window process) is recorded as
      // failed with its cause, like any other.
      result = failedWindow(openedAt, err);
      this.#log.error({ errorCode: result.error?.code }, `window failed to start: ${result.error?.message}`);
    } finally {
      if (postHook) hooks.post = await runHook(postHook, 'post-hook', this.#log);
      if (opened) await this.closeRoutes();
    }
    const record: WindowRecord = {
      ...result,
      trigger: request.trigger,
      ...(preHook || postHook ? { hooks } : {}),
    };
    await this.#cache.setState(lastWindowKey, record);
    return record;
  }

  /** Runs the window in a child process, serving its outbox and host requests. */
  #inChild(uplink: UplinkConfig, request: WindowRunRequest): Promise<WindowReport> {
    const openedAt = new Date().toISOString();
    const acked: Acked = { records: 0, messages: 0, bytes: 0, firstSeq: null, lastSeq: null };
    const served = new Map<number, number>();
    const child = fork(workerPath, {
      stdio: ['ignore', this.#logFd === 2 ? 2 : 'inherit', 'inherit', 'ipc'],
    });
    // The window process may die at any moment: a send into its closed channel is expected then
    // (EPIPE), and must never become an uncaught 'error' that stops the gateway.
    child.on('error', (err) => this.#log.warn({ err }, 'window process channel error'));
    const send = (message: ToWindow) => {
      if (child.connected)
        child.send(message, (err) => err && this.#log.debug({ err }, 'window process gone'));
    };
    this.#abort = () => send({ type: 'abort' });
    const maxDurationMs = request.maxDurationMs ?? uplink.window.maxDurationSeconds * 1000;
    const limitMs = maxDurationMs + uplink.connectTimeoutMs + killGraceMs;
    let overran = false;
    const killer = setTimeout(() => {
      overran = true;
      this.#log.error({ pid: child.pid, limitMs }, 'window process overran its deadline: killed');
      child.kill('SIGKILL');
    }, limitMs);

    return new Promise<WindowReport>((resolve) => {
      let result: WindowReport | undefined;
      const pending = new Set<Promise<unknown>>();
      child.on('message', (message: FromWindow) => {
        if (message.type === 'result') {
          // What the gateway saw acknowledged (removes) is never less than what the window reports.
          result = { ...message.result, ...(message.result.records < acked.records ? acked : {}) };
          return;
        }
        const serving = this.#serve(message, served, acked);
        pending.add(serving);
        void serving.then(
          () => pending.delete(serving),
          () => pending.delete(serving),
        );
        serving.then(
          (value) =>
            send(
              message.type === 'read'
                ? { type: 'reply', id: message.id, records: value as never }
                : { type: 'reply', id: message.id, value },
            ),
          (err: unknown) => {
            const code = isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL';
            send({ type: 'reply', id: message.id, error: { code, message: (err as Error).message } });
          },
        );
      });
      child.once('exit', (code, signal) => {
        clearTimeout(killer);
        // Removes still being served are counted before the window is: they left the cache.
        void Promise.allSettled([...pending]).then(() => ended(code, signal));
      });
      const ended = (code: number | null, signal: NodeJS.Signals | null) => {
        if (result) return resolve(result);
        // The window process ended without reporting (killed, a crash in native code): what it had
        // acknowledged is counted here.
        const counted = { openedAt, closedAt: new Date().toISOString(), events: 0, ...acked };
        if (this.#closing && !overran && (signal === 'SIGINT' || signal === 'SIGTERM')) {
          this.#log.info({ signal }, 'window interrupted: the gateway is stopping');
          return resolve({ ...counted, outcome: 'deadline', endedBy: 'interrupted' });
        }
        const error = overran
          ? {
              code: 'ATTACHE_TIMEOUT',
              message: `window process overran its deadline (${limitMs} ms): killed`,
            }
          : {
              code: 'ATTACHE_INTERNAL',
              message: `window process ended (${signal ?? `exit ${code}`}) before reporting`,
            };
        this.#log.error({ code, signal, errorCode: error.code }, error.message);
        resolve({ ...counted, outcome: 'failed', endedBy: 'failed', error });
      };
      send({
        type: 'start',
        gatewayId: this.#config.gateway.id,
        uplink,
        logLevel: this.#config.log.level,
        maxDurationMs,
        linger: request.linger ?? false,
        host: this.#host !== undefined,
        ...(uplink.provisioning ? { provisioningDir: provisioningDir(this.#config) } : {}),
        ...(this.#config.jobs === undefined
          ? {}
          : {
              jobs: {
                config: this.#config.jobs,
                dataDir: this.#config.gateway.dataDir,
                ...(this.#updates && this.#host ? { updates: this.#updates } : {}),
              },
            }),
      } satisfies ToWindow);
    }).finally(() => this.#drop(child));
  }

  async #serve(message: Exclude<FromWindow, { type: 'result' }>, served: Map<number, number>, acked: Acked) {
    const host = this.#host;
    switch (message.type) {
      case 'read': {
        const records = await this.#cache.read(message);
        for (const r of records) served.set(r.seq, r.json.length);
        return records;
      }
      case 'remove':
        await this.#cache.remove(message.firstSeq, message.lastSeq);
        this.#countRemoved(message.firstSeq, message.lastSeq, served, acked);
        return null;
      case 'state':
        return host ? host.reportState() : {};
      case 'desired':
        return host ? host.applyDesired(message.desired, message.version) : { applied: {}, refused: [] };
      case 'events':
        return host ? host.pendingEvents() : [];
      case 'removeEvents':
        await host?.removeEvents(message.eventIds);
        return null;
      case 'reload':
        return this.#hostOnly(host).reload();
      case 'health':
        return this.#hostOnly(host).health();
      case 'restart':
        return this.#hostOnly(host).restartAfterWindow();
    }
  }

  #hostOnly(host: WindowHostServer | undefined): WindowHostServer {
    if (!host) throw new GatewayError('ATTACHE_CANCELED', 'updates are applied only by a running gateway');
    return host;
  }

  #countRemoved(firstSeq: number, lastSeq: number, served: Map<number, number>, acked: Acked): void {
    acked.messages++;
    for (const [seq, bytes] of served) {
      if (seq < firstSeq || seq > lastSeq) continue;
      served.delete(seq);
      acked.records++;
      acked.bytes += bytes;
      acked.firstSeq = Math.min(acked.firstSeq ?? seq, seq);
      acked.lastSeq = Math.max(acked.lastSeq ?? seq, seq);
    }
  }

  #drop(child: ChildProcess): void {
    child.removeAllListeners('message');
    child.removeAllListeners('exit');
    if (child.connected) child.disconnect();
  }
}
