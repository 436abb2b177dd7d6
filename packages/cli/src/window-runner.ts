import type { LevelCache } from '@attache/cache';
import type { AttacheConfig, Logger, WindowResult } from '@attache/core';
import { GatewayError } from '@attache/core';
import { IotCoreUplink } from '@attache/uplink';

const lastWindowKey = 'lastWindow';

/**
 * Opens connectivity windows over one cache: one at a time (a request while one is open joins it),
 * each result kept in the cache's state for `attache status`.
 */
export class WindowRunner {
  readonly #cache: LevelCache;
  readonly #uplink: IotCoreUplink | undefined;
  #current: Promise<WindowResult> | undefined;
  #abort: AbortController | undefined;

  constructor(options: { config: AttacheConfig; cache: LevelCache; logger: Logger }) {
    const { config, cache, logger } = options;
    this.#cache = cache;
    this.#uplink = config.uplink
      ? new IotCoreUplink({
          gatewayId: config.gateway.id,
          config: config.uplink,
          logger: logger.child({ module: 'uplink' }),
        })
      : undefined;
  }

  get configured(): boolean {
    return this.#uplink !== undefined;
  }

  get open(): boolean {
    return this.#current !== undefined;
  }

  /** Opens a window now, or joins the one already open. Rejects ATTACHE_UPLINK_NOT_CONFIGURED without an uplink. */
  run(): Promise<WindowResult> {
    const uplink = this.#uplink;
    if (!uplink) {
      return Promise.reject(
        new GatewayError('ATTACHE_UPLINK_NOT_CONFIGURED', 'the config has no uplink section'),
      );
    }
    if (!this.#current) {
      const abort = new AbortController();
      this.#abort = abort;
      this.#current = this.#window(uplink, abort.signal).finally(() => {
        this.#current = undefined;
        this.#abort = undefined;
      });
    }
    return this.#current;
  }

  /** Ends an open window early (unacknowledged records stay in the cache) and waits for it. */
  async close(): Promise<void> {
    this.#abort?.abort();
    await this.#current?.catch(() => undefined);
  }

  /** The last window's result, from the cache. */
  last(): Promise<WindowResult | undefined> {
    return this.#cache.getState<WindowResult>(lastWindowKey);
  }

  async #window(uplink: IotCoreUplink, signal: AbortSignal): Promise<WindowResult> {
    const result = await uplink.openWindow(this.#cache, { signal });
    await this.#cache.setState(lastWindowKey, result);
    return result;
  }
}
