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
import { createAdapters } from './adapters.js';
import { ControlServer } from './control.js';
import { WindowRunner } from './window-runner.js';

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
  uplink: { configured: boolean; windowOpen: boolean; everySeconds: number | null };
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
    },
    adapters: live?.adapters ?? [],
  };
}

/** The running gateway: adapters → normalizer → cache, windows to the uplink, the control socket. */
export class Gateway {
  readonly #config: AttacheConfig;
  readonly #log: Logger;
  #cache: LevelCache | undefined;
  #windows: WindowRunner | undefined;
  #control: ControlServer | undefined;
  #adapters: DeviceAdapter[] = [];
  #timer: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #startedAt: string | null = null;

  constructor(options: { config: AttacheConfig; logger: Logger }) {
    this.#config = options.config;
    this.#log = options.logger;
  }

  async start(): Promise<void> {
    const config = this.#config;
    const cache = await openCache(config, this.#log);
    this.#cache = cache;
    this.#windows = new WindowRunner({ config, cache, logger: this.#log });
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
      return draft.then((d) => cache.append(d)).then(() => undefined);
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
    this.#schedule();
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
        uplink: this.#windows.configured,
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

  /** Stops in the order that loses nothing: windows, adapters, the open window, control socket, cache. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
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
      default:
        return Promise.reject(new TypeError(`unknown control method "${method}"`));
    }
  }

  /** Opens a window every `uplink.window.everySeconds`, counted from the end of the previous one. */
  #schedule(): void {
    const every = this.#config.uplink?.window.everySeconds ?? 0;
    if (every <= 0) return;
    this.#timer = setTimeout(() => {
      this.sync()
        .catch((err: unknown) => this.#log.error({ err }, 'scheduled window failed'))
        .finally(() => {
          if (this.#timer) this.#schedule();
        });
    }, every * 1000);
  }
}
