import type { CacheHealth, LevelCache } from '@attache/cache';
import type { AdapterStatus, AttacheConfig, BacklogStats, WindowResult } from '@attache/core';
import type { FilesUpService, FilesUpStatus } from '@attache/files-up';
import { WindowScheduler } from '@attache/uplink/policy';
import type { WindowRunner } from './window-runner.js';

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
  /** The backlog of each `uplink.routes` outbox, by route name (absent without routes). */
  routes?: Record<string, BacklogStats>;
  /** Files up (a running gateway with `files`): captured, uploaded, refused, dropped, duplicates, waiting. */
  files?: FilesUpStatus;
}

/**
 * A gateway's status from its cache and windows; `live` holds what only a running gateway knows
 * (omitted for `attache status` on a stopped gateway).
 */
export async function readStatus(
  config: AttacheConfig,
  cache: LevelCache,
  windows: WindowRunner,
  live?: { startedAt: string | null; adapters: AdapterStatus[]; files?: FilesUpService },
): Promise<GatewayStatus> {
  const routes = await windows.routeBacklogs();
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
    ...(Object.keys(routes).length > 0 ? { routes } : {}),
    ...(live?.files ? { files: await live.files.status() } : {}),
  };
}

/** The window policies `config` sets (empty without an uplink). */
export function policiesOf(config: AttacheConfig): string[] {
  const window = config.uplink?.window;
  return window ? new WindowScheduler({ window, open: async () => undefined }).policies() : [];
}

/**
 * The one-line summary systemd shows (`STATUS=`): devices connected of configured, the backlog, a
 * full cache, and how the last window ended. Never holds readings or patient data.
 */
export function statusLine(status: GatewayStatus): string {
  const connected = status.adapters.filter((a) => a.state === 'connected').length;
  const parts = [
    `${connected}/${status.adapters.length} devices connected`,
    `backlog ${status.backlog.records} records`,
  ];
  if (status.cache.full) parts.push('cache FULL');
  if (status.lastWindow) parts.push(`last window ${status.lastWindow.outcome} ${status.lastWindow.closedAt}`);
  return parts.join(', ');
}
