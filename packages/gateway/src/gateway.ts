import { rm } from 'node:fs/promises';
import { type LevelCache, loadOrCreateKeyring, loadOrCreateSigningKey } from '@attache/cache';
import {
  type AttacheConfig,
  type AttacheRecord,
  type Clock,
  type ClockTimer,
  GatewayError,
  type Logger,
  type ReadingSink,
  systemClock,
  type WindowResult,
} from '@attache/core';
import type { FilesUpService, UpStoreEvent } from '@attache/files-up';
import type { HealthReport } from '@attache/jobs';
import { hasRouteTo, type JsonObject, type SettingsOutcome, WindowScheduler } from '@attache/uplink/policy';
import { createAdapters, type GatewayAdapter } from './adapters.js';
import { every, schedulerClock } from './clock-timers.js';
import { loadConfig } from './config-file.js';
import { ControlServer } from './control.js';
import { controlHandler, type GatewayPage, type GatewayPageContext } from './gateway-control.js';
import { GatewayEvents } from './gateway-events.js';
import { gatewayLockWaitMs, openCache } from './open-cache.js';
import { exportStaging, gatewayPaths } from './paths.js';
import { routedSink } from './reading-sink.js';
import { adaptersHealth, changedDevices, uplinkHealth } from './reload-health.js';
import { reportedState } from './reported-state.js';
import { type GatewayStatus, readStatus } from './status.js';
import { ClockWatch } from './window-events.js';
import { WindowRunner } from './window-runner.js';
import { RemoteSettings } from './window-settings.js';

const version = '0.1.0';

/** Options of {@link Gateway}. */
export interface GatewayOptions {
  config: AttacheConfig;
  logger: Logger;
  /** The config file `config` came from: config-update jobs are applied to it (reloaded in-process). */
  configPath?: string;
  /** The install root of the running app (`releases/<version>`, `current`): enables software updates. */
  installRoot?: string;
  /**
   * The root release installer's Unix socket (the appliance's `attache-release-install.socket`):
   * software updates are then installed by it, root-owned, instead of unpacked into `installRoot`.
   */
  releaseInstaller?: string;
  /** Called once the window in which a software update asked for a restart has ended. */
  onRestart?: () => void;
  /**
   * The timers of the event monitor's cache check (every 5 s), the cache's expiry (every minute), the window
   * policies and a reload's settle time. Default `systemClock`; tests pass a `ManualClock`.
   */
  clock?: Clock;
  /**
   * Starts the technician page when the config has a `technician` section (the command line passes
   * it, so the page's code is loaded only then); stopped with the gateway.
   */
  page?: (
    config: AttacheConfig,
    logger: Logger,
    gateway: GatewayPageContext,
  ) => Promise<GatewayPage | undefined>;
}

/** The running gateway: adapters → normalizer → cache, windows to the uplink, the control socket. */
export class Gateway {
  #local: AttacheConfig;
  /** The local config in force before the last reload (what a config update's health compares to). */
  #beforeReload: AttacheConfig;
  readonly #options: GatewayOptions;
  /** Adapters whose start() failed at the last (re)start, by device id. */
  #startErrors = new Map<string, string>();
  #restartRequested = false;
  /** The local config with the shadow's remote settings laid over it. */
  #config: AttacheConfig;
  readonly #log: Logger;
  readonly #settings: RemoteSettings;
  #settingsOutcome: SettingsOutcome | undefined;
  #scheduler: WindowScheduler | undefined;
  #events: GatewayEvents | undefined;
  readonly #time: Clock;
  #clock: ClockWatch;
  #cache: LevelCache | undefined;
  #windows: WindowRunner | undefined;
  #files: FilesUpService | undefined;
  #control: ControlServer | undefined;
  #adapters: GatewayAdapter[] = [];
  #expiry: ClockTimer | undefined;
  #startedAt: string | null = null;
  #page: GatewayPage | undefined;
  /** Called with every record once stored (the technician page's live readings). */
  readonly #stored = new Set<(record: AttacheRecord) => void>();

  constructor(options: GatewayOptions) {
    this.#options = options;
    this.#local = options.config;
    this.#beforeReload = options.config;
    this.#config = options.config;
    this.#log = options.logger;
    this.#settings = new RemoteSettings(options.config.gateway.dataDir);
    this.#clock = new ClockWatch(options.config.gateway.clockSyncFile);
    this.#time = options.clock ?? systemClock;
  }

  async start(): Promise<void> {
    await this.#settings.load();
    this.#config = this.#settings.effective(this.#local);
    const config = this.#config;
    const cache = await openCache(config, this.#log, undefined, gatewayLockWaitMs);
    this.#cache = cache;
    await this.#clock.stamp();
    const keyring = await loadOrCreateKeyring(gatewayPaths(config).keyFile);
    // Files up runs with an uplink only; without both its code (and the S3 client's) is not loaded.
    if (config.files && config.uplink) {
      const filesUp = await import('@attache/files-up');
      this.#files = await filesUp.startFilesUp(config, keyring, this.#log, (event) =>
        this.#fileEvent(filesUp.fileEventDetail(event), event.type),
      );
    }
    this.#startWindows(cache);
    await this.#windows?.openRoutes();
    const sink = this.#sink(cache);
    this.#control = new ControlServer({
      path: gatewayPaths(config).socket,
      handler: controlHandler({
        stored: this.#stored,
        cache: () => this.#running().cache,
        config: () => this.#config,
        status: () => this.status(),
        sync: () => this.sync(),
        rescan: () => this.rescan(),
      }),
      logger: this.#log.child({ module: 'control' }),
    });
    await this.#control.start();
    // Created here, by the service's user, so that the key is always the service's own. A key that
    // cannot be used stops exports only, never acquisition.
    await loadOrCreateSigningKey(gatewayPaths(config).signingKey).catch((err: unknown) =>
      this.#log.error({ err }, 'the export-signing key is unusable: cache export fails until it is fixed'),
    );
    await rm(exportStaging(config.gateway.dataDir), { recursive: true, force: true });
    this.#adapters = await createAdapters(config, sink, this.#log, () => cache.refusing, this.#files?.store);
    this.#events?.watch(this.#adapters);
    for (const adapter of this.#adapters) await adapter.start();
    this.#startedAt = new Date().toISOString();
    this.#startPolicies();
    await this.#startPage(config);
    if (config.cache.maxAgeDays > 0) {
      // The cache logs what it drops; a failure here must not stop the gateway.
      this.#expiry = every(this.#time, 60_000, () => {
        cache
          .expire(this.#time.now())
          .catch((err: unknown) => this.#log.error({ err }, 'expiring old records failed'));
      });
    }
    const backlog = await cache.stats();
    this.#log.info(
      {
        gatewayId: config.gateway.id,
        devices: config.devices.length,
        backlog: backlog.records,
        uplink: config.uplink !== undefined,
      },
      'gateway started',
    );
  }

  /** Starts the page when the config has one: with the page off, none of its code is loaded. */
  async #startPage(config: AttacheConfig): Promise<void> {
    if (!config.technician || !this.#options.page) return;
    this.#page = await this.#options.page(config, this.#log, {
      status: () => this.status(),
      sync: () => this.sync(),
      stored: this.#stored,
      stageExport: async (params, notify) => {
        const { cache } = this.#running();
        const paths = {
          dataDir: this.#config.gateway.dataDir,
          signingKey: gatewayPaths(this.#config).signingKey,
        };
        return (await import('./export-service.js')).stageExport(cache, paths, params, notify);
      },
      target: {
        config: () => this.#config,
        configPath: this.#options.configPath,
        reload: () => this.reload(),
        health: () => this.health(),
        logger: this.#log,
      },
    });
  }

  /** Opens a window now (or joins the open one). */
  sync(): Promise<WindowResult> {
    return this.#running().windows.run();
  }

  status(): Promise<GatewayStatus> {
    const { cache, windows } = this.#running();
    return readStatus(this.#config, cache, windows, {
      startedAt: this.#startedAt,
      adapters: this.#adapters.map((a) => a.status()),
      ...(this.#files ? { files: this.#files } : {}),
    });
  }

  /**
   * Serial ports changed (udev hot-plug, `attache ports --rescan`): every adapter waiting for its
   * port tries now. Returns the ids of the adapters that retried.
   */
  rescan(): { retried: string[] } {
    const retried = this.#adapters.filter((a) => a.rescan?.() === true).map((a) => a.deviceId);
    this.#log.info({ retried }, 'port rescan');
    return { retried };
  }

  /**
   * Applies the config file again (a config-update job): re-reads and validates it as at start,
   * stops the adapters, starts those of the new config (the cache stays open), and uses its uplink
   * and log level from now on, its `uplink.routes` included (a device moved to another route sends
   * its next records there). The `gateway` and `cache` sections take effect at the next start.
   * Rejects ATTACHE_CONFIG_INVALID (nothing changed) when the file does not load; rejects with the
   * cache's error, adapters stopped, when a new route's outbox does not open (a config job then
   * rolls back).
   */
  async reload(): Promise<void> {
    const { cache } = this.#running();
    if (this.#options.configPath === undefined) throw new TypeError('"configPath" was not given');
    const next = await loadConfig(this.#options.configPath);
    this.#beforeReload = this.#local;
    this.#local = next;
    this.#config = this.#settings.effective(next);
    for (const adapter of this.#adapters) await adapter.stop();
    this.#events?.unwatch();
    // The route lanes first: the new sink sends each device's records to its route of the new config.
    await this.#windows?.reconfigure(this.#config);
    this.#adapters = await createAdapters(
      this.#config,
      this.#sink(cache),
      this.#log,
      () => cache.refusing,
      this.#files?.store,
    );
    this.#events?.watch(this.#adapters);
    this.#startErrors = new Map();
    for (const adapter of this.#adapters) {
      await adapter.start().catch((err: unknown) => {
        this.#startErrors.set(adapter.deviceId, (err as Error).message);
      });
    }
    if (this.#config.uplink) this.#scheduler?.update(this.#config.uplink.window);
    const root = this.#log as Logger & { level?: string };
    if (typeof root.level === 'string') root.level = this.#config.log.level;
    await this.#reloadPage(this.#beforeReload, next);
    this.#log.info({ devices: this.#adapters.length }, 'config reloaded');
  }

  /**
   * The health of the config last reloaded: every adapter started, the new or changed ones connected
   * within the settle time, and a changed uplink reachable with its new certificates.
   */
  async health(): Promise<HealthReport> {
    const changed = changedDevices(this.#beforeReload, this.#local);
    const adapters = await adaptersHealth(this.#adapters, changed, this.#startErrors, this.#time);
    if (!adapters.healthy) return adapters;
    return uplinkHealth(this.#beforeReload, this.#config);
  }

  /**
   * A reload that added, changed or removed the `technician` section: the page starts, moves or
   * stops now. Stopping is not waited for: the request that applied the config may be the page's own.
   */
  async #reloadPage(before: AttacheConfig, next: AttacheConfig): Promise<void> {
    if (JSON.stringify(before.technician) === JSON.stringify(next.technician)) return;
    const page = this.#page;
    if (page === undefined) return this.#startPage(this.#config);
    const section = this.#config.technician;
    if (section) return page.reconfigure(section);
    this.#page = undefined;
    void page.stop().catch((err: unknown) => this.#log.error({ err }, 'the technician page did not stop'));
  }

  /** A software update switched releases: once the open window has ended, `onRestart` is called. */
  #restartAfterWindow(): Promise<void> {
    if (!this.#options.onRestart) {
      return Promise.reject(new GatewayError('ATTACHE_CANCELED', 'this gateway cannot be restarted'));
    }
    if (!this.#restartRequested) {
      this.#restartRequested = true;
      this.#log.info('restart requested: after this window');
      void this.#windows?.whenIdle().then(() => this.#options.onRestart?.());
    }
    return Promise.resolve();
  }

  /** Stops in the order that loses nothing: windows, adapters, the open window, control socket, cache. */
  async stop(): Promise<void> {
    this.#scheduler?.stop();
    this.#events?.stopChecks();
    this.#expiry?.cancel();
    await this.#page?.stop();
    for (const adapter of this.#adapters) await adapter.stop();
    await this.#files?.stop();
    await this.#events?.flush();
    await this.#windows?.close();
    await this.#windows?.closeRoutes();
    await this.#control?.stop();
    await this.#cache?.close();
    this.#log.info('gateway stopped');
  }

  /** The readings sink: a routed device's records go to its route's outbox, all others to `cache`. */
  #sink(cache: LevelCache): ReadingSink {
    return routedSink(this.#config, cache, (id) => this.#windows?.outboxFor(id), this.#log, this.#stored);
  }

  #running(): { cache: LevelCache; windows: WindowRunner } {
    if (!this.#cache || !this.#windows)
      throw new GatewayError('ATTACHE_CANCELED', 'the gateway is not running');
    return { cache: this.#cache, windows: this.#windows };
  }

  /** The window runner, serving the window process state, shadow settings and events. */
  #startWindows(cache: LevelCache): void {
    const gatewayEvents = new GatewayEvents({
      cache,
      gatewayId: this.#config.gateway.id,
      clock: this.#clock,
      time: this.#time,
      logger: this.#log,
    });
    this.#events = gatewayEvents;
    const events = gatewayEvents.journal;
    this.#windows = new WindowRunner({
      config: this.#config,
      cache,
      logger: this.#log,
      openOutbox: (path) => openCache(this.#config, this.#log, path, gatewayLockWaitMs),
      ...(this.#files ? { files: this.#files } : {}),
      host: {
        reportState: () => this.#reportState(),
        applyDesired: (desired, desiredVersion) => this.#applyDesired(desired, desiredVersion),
        pendingEvents: () => events.pending(),
        removeEvents: (ids) => events.remove(ids),
        reload: () => this.reload(),
        health: () => this.health(),
        restartAfterWindow: () => this.#restartAfterWindow(),
      },
      ...(this.#options.configPath === undefined
        ? {}
        : {
            updates: {
              configPath: this.#options.configPath,
              ...(this.#options.installRoot === undefined ? {} : { installRoot: this.#options.installRoot }),
              ...(this.#options.releaseInstaller === undefined
                ? {}
                : { releaseInstaller: this.#options.releaseInstaller }),
            },
          }),
      // After the pre-hook NTP may have synchronized the clock: record the correction first.
      beforeConnect: () => gatewayEvents.checkClock(this.#config.uplink),
    });
  }

  /** A files-up event into the journal (uploaded with the next window); duplicates are only counted. */
  #fileEvent(detail: Record<string, string | number> | undefined, type: UpStoreEvent['type']): void {
    if (!detail || type === 'file.duplicate') return;
    this.#events?.journal
      .add(type, detail)
      .catch((err: unknown) => this.#log.error({ err }, 'a files-up event could not be journaled'));
  }

  /** Starts the window policies and the event monitor's cache checks. */
  #startPolicies(): void {
    const { windows } = this.#running();
    this.#events?.startChecks();
    const uplink = this.#config.uplink;
    if (!uplink) return;
    this.#scheduler = new WindowScheduler({
      window: uplink.window,
      open: (request) => windows.run(request),
      routeCheck: () => hasRouteTo(uplink.endpoint),
      logger: this.#log,
      retryJitter: this.#config.gateway.retryJitter,
      clock: schedulerClock(this.#time),
    });
    this.#scheduler.start();
  }

  /** The shadow's `state.reported` and the state message's `state`. */
  async #reportState(): Promise<JsonObject> {
    const status = await this.status();
    return reportedState(status, {
      version,
      clock: await this.#clock.stamp(),
      settings: this.#settingsOutcome ?? { applied: this.#settings.applied, refused: [] },
    });
  }

  /** Validates, persists and applies the shadow's desired settings (window policies at once). */
  async #applyDesired(desired: JsonObject, desiredVersion: number) {
    const { outcome, config } = await this.#settings.apply(this.#local, desired, desiredVersion);
    this.#settingsOutcome = outcome;
    this.#config = config;
    await this.#windows?.reconfigure(config);
    if (config.uplink) this.#scheduler?.update(config.uplink.window);
    const root = this.#log as Logger & { level?: string };
    if (typeof root.level === 'string') root.level = config.log.level;
    this.#log.info({ refused: outcome.refused.length }, 'remote settings applied');
    return outcome;
  }
}
