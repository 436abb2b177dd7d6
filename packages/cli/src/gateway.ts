import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type CacheHealth, LevelCache, loadOrCreateKeyring } from '@attache/cache';
import type {
  AdapterStatus,
  AttacheConfig,
  BacklogStats,
  DeviceAdapter,
  Logger,
  ReadingSink,
  WindowResult,
} from '@attache/core';
import { GatewayError } from '@attache/core';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';
import { hasRouteTo, type JsonObject, type SettingsOutcome, WindowScheduler } from '@attache/uplink';
import { createAdapters } from './adapters.js';
import { ControlServer } from './control.js';
import { ClockWatch, EventJournal, EventMonitor } from './window-events.js';
import { type WindowRecord, WindowRunner } from './window-runner.js';
import { RemoteSettings } from './window-settings.js';

const version = '0.1.0';
/** How often adapter and cache changes are checked for events. */
const eventPollMs = 5000;

/** What `attache status` reports. */
export interface GatewayStatus {
  gatewayId: string;
  /** True when answered by a running gateway, false when read from the cache of a stopped one. */
  running: boolean;
  startedAt: string | null;
  backlog: BacklogStats;
  /**
   * `dropped`: records dropped by the cache's bounds (drop-oldest, max age); `quarantined`: cached values
   * that failed authentication; `full`: the cache is at a bound (or the disk is full) now.
   */
  cache: CacheHealth;
  lastWindow: WindowResult | null;
  uplink: {
    configured: boolean;
    windowOpen: boolean;
    everySeconds: number | null;
    /** The window policies in force (remote settings applied), e.g. `schedule 02:00-02:20`. */
    policies?: string[];
  };
  adapters: AdapterStatus[];
}

/** Where a gateway keeps its files under its data directory. */
export function gatewayPaths(config: AttacheConfig): { cache: string; keyFile: string; socket: string } {
  const dir = config.gateway.dataDir;
  return {
    cache: join(dir, 'cache'),
    keyFile: config.cache.keyFile ?? join(dir, 'keys', 'cache.key'),
    socket: join(dir, 'attache.sock'),
  };
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Opens the cache of a gateway's data directory (creating the directory, owner-only) with its data
 * key. A missing key file is created on first start, but never beside an existing cache: a new key
 * could not read the backlog, so the gateway refuses to start until the key file is restored.
 */
export async function openCache(config: AttacheConfig, logger: Logger): Promise<LevelCache> {
  await mkdir(config.gateway.dataDir, { recursive: true, mode: 0o700 });
  const paths = gatewayPaths(config);
  if (!(await exists(paths.keyFile)) && (await exists(join(paths.cache, 'CURRENT')))) {
    throw new GatewayError(
      'ATTACHE_CACHE_KEY',
      'the cache holds data but its key file is missing: restore cache.keyFile (a new key could not read the backlog)',
    );
  }
  const { maxRecords, maxBytes, maxAgeDays, whenFull } = config.cache;
  const cache = new LevelCache({
    path: paths.cache,
    limits: { maxRecords, maxBytes, maxAgeMs: maxAgeDays * 86_400_000, whenFull },
    keyring: await loadOrCreateKeyring(paths.keyFile),
    commitIntervalMs: config.cache.commitIntervalMs,
    maxBatchRecords: config.cache.maxBatchRecords,
    logger,
  });
  await cache.open();
  return cache;
}

/**
 * A gateway's status from its cache and windows; `live` holds what only a running gateway knows
 * (omitted for `attache status` on a stopped gateway).
 */
export async function readStatus(
  config: AttacheConfig,
  cache: LevelCache,
  windows: WindowRunner,
  live?: { startedAt: string | null; adapters: AdapterStatus[] },
): Promise<GatewayStatus> {
  return {
    gatewayId: config.gateway.id,
    running: live !== undefined,
    startedAt: live?.startedAt ?? null,
    backlog: await cache.stats(),
    cache: await cache.health(),
    lastWindow: (await windows.last()) ?? null,
    uplink: {
      configured: windows.configured,
      windowOpen: windows.open,
      everySeconds: config.uplink?.window.everySeconds || null,
      policies: policiesOf(config),
    },
    adapters: live?.adapters ?? [],
  };
}

/** The window policies `config` sets (empty without an uplink). */
function policiesOf(config: AttacheConfig): string[] {
  const window = config.uplink?.window;
  return window ? new WindowScheduler({ window, open: async () => undefined }).policies() : [];
}

/** The running gateway: adapters → normalizer → cache, windows to the uplink, the control socket. */
export class Gateway {
  readonly #local: AttacheConfig;
  /** The local config with the shadow's remote settings laid over it. */
  #config: AttacheConfig;
  readonly #log: Logger;
  readonly #settings: RemoteSettings;
  #settingsOutcome: SettingsOutcome | undefined;
  #scheduler: WindowScheduler | undefined;
  #events: EventJournal | undefined;
  #monitor: NodeJS.Timeout | undefined;
  #clock: ClockWatch;
  #cache: LevelCache | undefined;
  #windows: WindowRunner | undefined;
  #control: ControlServer | undefined;
  #adapters: DeviceAdapter[] = [];
  #expiry: NodeJS.Timeout | undefined;
  #startedAt: string | null = null;

  constructor(options: { config: AttacheConfig; logger: Logger }) {
    this.#local = options.config;
    this.#config = options.config;
    this.#log = options.logger;
    this.#settings = new RemoteSettings(options.config.gateway.dataDir);
    this.#clock = new ClockWatch(options.config.gateway.clockSyncFile);
  }

  async start(): Promise<void> {
    await this.#settings.load();
    this.#config = this.#settings.effective(this.#local);
    const config = this.#config;
    const cache = await openCache(config, this.#log);
    this.#cache = cache;
    await this.#clock.stamp();
    this.#startWindows(cache);
    const normalizer = new ReadingNormalizer({
      gatewayId: config.gateway.id,
      devices: config.devices,
      tokenizer: cache,
      clock: new SystemClock({ syncFile: config.gateway.clockSyncFile }),
      logger: this.#log,
    });
    // Normalization is asynchronous (patient tokens), so each waits for the previous one to reach the
    // cache's queue: records keep call order while many wait for the same synced write.
    let previous: Promise<unknown> = Promise.resolve();
    const sink: ReadingSink = (reading) => {
      const draft = previous.then(() => normalizer.normalize(reading));
      previous = draft.catch(() => undefined);
      // Scoped to the device: two devices may well send the same bytes.
      const key = reading.idempotencyKey && `${reading.deviceId}:${reading.idempotencyKey}`;
      return draft
        .then((d) => (key === undefined ? cache.append(d) : cache.append(d, { idempotencyKey: key })))
        .then(() => undefined);
    };
    this.#control = new ControlServer({
      path: gatewayPaths(config).socket,
      handler: (method) => this.#handle(method),
      logger: this.#log.child({ module: 'control' }),
    });
    await this.#control.start();
    this.#adapters = createAdapters(config, sink, this.#log);
    for (const adapter of this.#adapters) await adapter.start();
    this.#startedAt = new Date().toISOString();
    this.#startPolicies();
    if (config.cache.maxAgeDays > 0) {
      // The cache logs what it drops; a failure here must not stop the gateway.
      this.#expiry = setInterval(() => {
        cache.expire().catch((err: unknown) => this.#log.error({ err }, 'expiring old records failed'));
      }, 60_000);
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

  /** Opens a window now (or joins the open one). */
  sync(): Promise<WindowResult> {
    return this.#running().windows.run();
  }

  status(): Promise<GatewayStatus> {
    const { cache, windows } = this.#running();
    return readStatus(this.#config, cache, windows, {
      startedAt: this.#startedAt,
      adapters: this.#adapters.map((a) => a.status()),
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

  /** Stops in the order that loses nothing: windows, adapters, the open window, control socket, cache. */
  async stop(): Promise<void> {
    this.#scheduler?.stop();
    clearInterval(this.#monitor);
    clearInterval(this.#expiry);
    for (const adapter of this.#adapters) await adapter.stop();
    await this.#windows?.close();
    await this.#control?.stop();
    await this.#cache?.close();
    this.#log.info('gateway stopped');
  }

  #running(): { cache: LevelCache; windows: WindowRunner } {
    if (!this.#cache || !this.#windows)
      throw new GatewayError('ATTACHE_CANCELED', 'the gateway is not running');
    return { cache: this.#cache, windows: this.#windows };
  }

  #handle(method: string): Promise<unknown> {
    switch (method) {
      case 'status':
        return this.status();
      case 'sync':
        return this.sync();
      case 'rescan':
        return Promise.resolve(this.rescan());
      default:
        return Promise.reject(new TypeError(`unknown control method "${method}"`));
    }
  }

  /** The window runner, serving the window process state, shadow settings and events. */
  #startWindows(cache: LevelCache): void {
    const events = new EventJournal({
      cache,
      gatewayId: this.#config.gateway.id,
      clock: this.#clock,
      logger: this.#log.child({ module: 'events' }),
    });
    this.#events = events;
    this.#windows = new WindowRunner({
      config: this.#config,
      cache,
      logger: this.#log,
      host: {
        reportState: () => this.#reportState(),
        applyDesired: (desired, desiredVersion) => this.#applyDesired(desired, desiredVersion),
        pendingEvents: () => events.pending(),
        removeEvents: (ids) => events.remove(ids),
      },
      // After the pre-hook NTP may have synchronized the clock: record the correction first.
      beforeConnect: async () => {
        const correction = await this.#clock.correction();
        if (correction) await events.add('clock.corrected', correction);
      },
    });
  }

  /** Starts the window policies and the event monitor. */
  #startPolicies(): void {
    const { cache, windows } = this.#running();
    const monitor = new EventMonitor({
      journal: this.#events as EventJournal,
      cache,
      adapters: () => this.#adapters.map((a) => a.status()),
    });
    const poll = () =>
      monitor.poll().catch((err: unknown) => this.#log.error({ err }, 'event monitor failed'));
    void poll();
    this.#monitor = setInterval(poll, eventPollMs);
    const uplink = this.#config.uplink;
    if (!uplink) return;
    this.#scheduler = new WindowScheduler({
      window: uplink.window,
      open: (request) => windows.run(request),
      routeCheck: () => hasRouteTo(uplink.endpoint),
      logger: this.#log,
    });
    this.#scheduler.start();
  }

  /** The shadow's `state.reported` and the state message's `state`. */
  async #reportState(): Promise<JsonObject> {
    const status = await this.status();
    const w = (status.lastWindow ?? null) as WindowRecord | null;
    return {
      version,
      startedAt: status.startedAt,
      adapters: status.adapters.map((a) => ({
        deviceId: a.deviceId,
        adapter: a.adapter,
        state: a.state,
        since: a.since,
        stored: a.stored,
        ...(a.lastError ? { lastErrorCode: a.lastError.code } : {}),
      })),
      backlog: {
        records: status.backlog.records,
        bytes: status.backlog.bytes,
        oldestCapturedAt: status.backlog.oldestCapturedAt,
      },
      cache: {
        full: status.cache.full,
        dropped: status.cache.dropped,
        quarantined: status.cache.quarantined,
      },
      lastWindow: w && {
        openedAt: w.openedAt,
        closedAt: w.closedAt,
        outcome: w.outcome,
        ...(w.endedBy ? { endedBy: w.endedBy } : {}),
        ...(w.trigger ? { trigger: w.trigger } : {}),
        records: w.records,
        messages: w.messages,
        bytes: w.bytes,
        ...(w.error ? { errorCode: w.error.code } : {}),
      },
      clock: await this.#clock.stamp(),
      windowPolicies: status.uplink.policies ?? [],
      settings: this.#settingsOutcome ?? { applied: this.#settings.applied, refused: [] },
    };
  }

  /** Validates, persists and applies the shadow's desired settings (window policies at once). */
  async #applyDesired(desired: JsonObject, desiredVersion: number) {
    const { outcome, config } = await this.#settings.apply(this.#local, desired, desiredVersion);
    this.#settingsOutcome = outcome;
    this.#config = config;
    this.#windows?.reconfigure(config);
    if (config.uplink) this.#scheduler?.update(config.uplink.window);
    const root = this.#log as Logger & { level?: string };
    if (typeof root.level === 'string') root.level = config.log.level;
    this.#log.info({ refused: outcome.refused.length }, 'remote settings applied');
    return outcome;
  }
}
