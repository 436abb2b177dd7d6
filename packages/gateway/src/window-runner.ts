import type { LevelCache } from '@attache/cache';
import {
  type AttacheConfig,
  type BacklogStats,
  GatewayError,
  type Logger,
  type UplinkConfig,
} from '@attache/core';
import type { FilesUpService, FilesWindowReport } from '@attache/files-up';
import { type HookResult, runHook, type WindowReport, withRouteReports } from '@attache/uplink/policy';
import { limitHeapGrowth } from './heap-growth.js';
import { openCache } from './open-cache.js';
import { forkWindow, runWindowChild } from './window-child.js';
import {
  failedWindow,
  type UpdateTargets,
  type WindowChild,
  type WindowHostServer,
} from './window-protocol.js';
import { RouteLanes } from './window-routes.js';
import { lastWindowKey } from './window-state.js';

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
  /** What the window's file upload did (`files` configured). */
  files?: FilesWindowReport;
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
  /** Starts a window process. Default: forks `window-worker.js`; a test may run one in-process. */
  spawnWindow?: () => WindowChild;
  /** Files up: uploaded in each window, after the telemetry or before it (`files.upload.priority`). */
  files?: Pick<FilesUpService, 'upload'>;
}

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
  readonly #spawnWindow: () => WindowChild;
  readonly #files: Pick<FilesUpService, 'upload'> | undefined;
  #stopFiles = new AbortController();
  #routes: RouteLanes | undefined;

  constructor(options: WindowRunnerOptions) {
    this.#cache = options.cache;
    this.#config = options.config;
    this.#log = options.logger.child({ module: 'window' });
    this.#host = options.host;
    this.#beforeConnect = options.beforeConnect;
    this.#updates = options.updates;
    this.#logFd = options.logFd ?? 1;
    this.#spawnWindow = options.spawnWindow ?? (() => forkWindow(this.#logFd));
    this.#files = options.files;
    this.#openOutbox = options.openOutbox ?? ((path) => openCache(this.#config, options.logger, path));
  }

  /**
   * Opens the outbox of every `uplink.routes` entry (`<dataDir>/routes/<name>`, created when missing).
   * The routes were checked when the config was loaded (`checkConfig`).
   */
  async openRoutes(): Promise<void> {
    if (this.#routes) return;
    this.#routes = new RouteLanes({
      openOutbox: this.#openOutbox,
      runner: (config, cache, logger) =>
        new WindowRunner({ config, cache, logger, logFd: this.#logFd, spawnWindow: this.#spawnWindow }),
      logger: this.#log,
    });
    await this.#routes.sync(this.#config);
  }

  /** The outbox of the route that takes `deviceId`'s records; undefined for the default route. */
  outboxFor(deviceId: string): LevelCache | undefined {
    return this.#routes?.outboxFor(deviceId);
  }

  /** The backlog of every open route outbox, by route name (empty when there are none or not open). */
  async routeBacklogs(): Promise<Record<string, BacklogStats>> {
    return (await this.#routes?.backlogs()) ?? {};
  }

  /** Closes the route outboxes (after `close()`). */
  async closeRoutes(): Promise<void> {
    await this.#routes?.close();
    this.#routes = undefined;
  }

  get configured(): boolean {
    return this.#config.uplink !== undefined;
  }

  get open(): boolean {
    return this.#current !== undefined;
  }

  /**
   * Uses `config` (e.g. with remote settings applied, or reloaded) from the next window on, and
   * brings the open route lanes in line with its `uplink.routes` (see `outboxFor`). Rejects when a new
   * route's outbox cannot be opened (the other routes are in force then).
   */
  async reconfigure(config: AttacheConfig): Promise<void> {
    this.#config = config;
    await this.#routes?.sync(config);
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
    // The drain is served from this process: its dead objects (and the native memory they hold)
    // must not pile up with the backlog. Set at the first window, not when the runner is made:
    // `attache status` makes one to read the last window, and a V8 flag changed in a command makes
    // the CLI's code cache of that command one V8 rejects.
    limitHeapGrowth();
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
    this.#stopFiles.abort();
    this.#routes?.closeWindows();
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
    let result: WindowReport & { files?: FilesWindowReport };
    // An offline `attache sync` opens the route outboxes for this window only.
    const opened = this.#routes === undefined && uplink.routes.length > 0;
    const openedAt = new Date().toISOString();
    try {
      if (opened) await this.openRoutes();
      if (preHook) hooks.pre = await runHook(preHook, 'pre-hook', this.#log);
      await this.#beforeConnect?.().catch((err: unknown) =>
        this.#log.warn({ err }, 'before-connect step failed'),
      );
      const budget = uplink.window.maxBytes;
      const files = this.#filesPhase(request.maxDurationMs ?? uplink.window.maxDurationSeconds * 1000);
      const first =
        this.#config.files?.upload.priority === 'before-telemetry' ? await files(budget) : undefined;
      const telemetry =
        first && budget > 0
          ? { ...uplink, window: { ...uplink.window, maxBytes: Math.max(1, budget - first.bytes) } }
          : uplink;
      const routed = this.#routes?.run(request) ?? Promise.resolve({});
      const own = runWindowChild({
        config: this.#config,
        uplink: telemetry,
        request,
        cache: this.#cache,
        log: this.#log,
        host: this.#host,
        updates: this.#updates,
        spawnWindow: this.#spawnWindow,
        onAbort: (abort) => {
          this.#abort = abort;
        },
        closing: () => this.#closing,
      });
      result = withRouteReports(await own, await routed);
      const left = budget - result.bytes;
      const report = first ?? (await files(budget === 0 ? 0 : left > 0 ? left : -1));
      if (report) result = { ...result, files: report };
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

  /**
   * The window's file upload within `maxBytes` (0: no budget; < 0: nothing left) and the window's
   * deadline; undefined without files up or budget.
   */
  #filesPhase(maxDurationMs: number): (maxBytes: number) => Promise<FilesWindowReport | undefined> {
    const deadline = AbortSignal.any([AbortSignal.timeout(maxDurationMs), this.#stopFiles.signal]);
    return async (maxBytes) =>
      this.#files && maxBytes >= 0 ? this.#files.upload({ maxBytes, signal: deadline }) : undefined;
  }
}
