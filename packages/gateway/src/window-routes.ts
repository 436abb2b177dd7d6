import { join } from 'node:path';
import type { LevelCache } from '@attache/cache';
import type { AttacheConfig, BacklogStats, Logger, UplinkConfig } from '@attache/core';
import { routeUplinkConfig } from '@attache/uplink/policy';
import type { WindowRecord, WindowRunRequest } from './window-runner.js';

/** What runs one route's windows (a `WindowRunner` of the route's config and outbox). */
export interface LaneRunner {
  run(request: WindowRunRequest): Promise<WindowRecord>;
  reconfigure(config: AttacheConfig): Promise<void>;
  close(): Promise<void>;
}

/**
 * One `uplink.routes` entry as the runner holds it: its outbox and the runner of its windows. `devices`
 * is empty once a reload removed the route: its outbox is still drained to its endpoint.
 */
interface RouteLane {
  devices: Set<string>;
  cache: LevelCache;
  runner: LaneRunner;
}

/** Options of {@link RouteLanes}. */
export interface RouteLanesOptions {
  /** Opens the cache at `path` as a route's outbox. */
  openOutbox: (path: string) => Promise<LevelCache>;
  /** The runner of a new route's windows, on the route's config and outbox. */
  runner: (config: AttacheConfig, cache: LevelCache, logger: Logger) => LaneRunner;
  logger: Logger;
}

/** The open route lanes of `uplink.routes`: one outbox and window runner per route. */
export class RouteLanes {
  readonly #lanes = new Map<string, RouteLane>();
  readonly #o: RouteLanesOptions;

  constructor(options: RouteLanesOptions) {
    this.#o = options;
  }

  /**
   * Brings the lanes in line with `uplink.routes` of `config`: a new route's outbox
   * (`<dataDir>/routes/<name>`, created when missing) is opened, a kept route takes its new devices
   * and endpoint (from its next window on), and a removed route keeps its outbox with no devices, so
   * what it holds still goes to its own endpoint. Rejects when a new route's outbox cannot be opened
   * (the other routes are in force then).
   */
  async sync(config: AttacheConfig): Promise<void> {
    const uplink = config.uplink;
    const wanted = new Set<string>();
    for (const route of uplink?.routes ?? []) {
      wanted.add(route.name);
      const routeConfig = {
        ...config,
        jobs: undefined,
        uplink: routeUplinkConfig(uplink as UplinkConfig, route),
      };
      const lane = this.#lanes.get(route.name);
      if (lane) {
        lane.devices = new Set(route.devices);
        await lane.runner.reconfigure(routeConfig);
        continue;
      }
      const cache = await this.#o.openOutbox(join(config.gateway.dataDir, 'routes', route.name));
      const runner = this.#o.runner(routeConfig, cache, this.#o.logger.child({ route: route.name }));
      this.#lanes.set(route.name, { devices: new Set(route.devices), cache, runner });
    }
    for (const [name, lane] of this.#lanes) if (!wanted.has(name)) lane.devices = new Set();
  }

  /** The outbox of the route that takes `deviceId`'s records; undefined for the default route. */
  outboxFor(deviceId: string): LevelCache | undefined {
    for (const lane of this.#lanes.values()) if (lane.devices.has(deviceId)) return lane.cache;
    return undefined;
  }

  /** The backlog of every route outbox, by route name. */
  async backlogs(): Promise<Record<string, BacklogStats>> {
    const backlogs: Record<string, BacklogStats> = {};
    for (const [name, lane] of this.#lanes) backlogs[name] = await lane.cache.stats();
    return backlogs;
  }

  /** Runs a window of every route; resolves their results by name. */
  async run(request: WindowRunRequest): Promise<Record<string, WindowRecord>> {
    const lanes = [...this.#lanes];
    const results = await Promise.all(lanes.map(([, lane]) => lane.runner.run(request)));
    return Object.fromEntries(lanes.map(([name], i) => [name, results[i] as WindowRecord]));
  }

  /** Ends the routes' open windows early (not awaited: the default window's close waits for its own). */
  closeWindows(): void {
    for (const lane of this.#lanes.values()) void lane.runner.close();
  }

  /** Closes the route outboxes (after their windows). */
  async close(): Promise<void> {
    for (const lane of this.#lanes.values()) await lane.cache.close();
  }
}
