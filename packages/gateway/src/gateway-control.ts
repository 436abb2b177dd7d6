// What the running gateway answers on its control socket, and what it lends the technician page.
import type { ExportManifest, LevelCache } from '@attache/cache';
import type { AttacheConfig, AttacheRecord, Logger, TechnicianConfig, WindowResult } from '@attache/core';
import type { HealthReport } from '@attache/jobs';
import type { ControlHandler } from './control.js';
import type { ExportProgress } from './export-service.js';
import { gatewayPaths } from './paths.js';
import type { GatewayStatus } from './status.js';

/** A page served beside the gateway. */
export interface GatewayPage {
  stop(): Promise<void>;
  /** Takes up a reloaded config's page section that changed but is still there. */
  reconfigure(section: TechnicianConfig): Promise<void>;
}

/** What the gateway lends a page: its status, a window now, every stored record, config updates. */
export interface GatewayPageContext {
  status(): Promise<GatewayStatus>;
  sync(): Promise<WindowResult>;
  /** Each listener in this set is called with every record once it is stored. */
  stored: Set<(record: AttacheRecord) => void>;
  /** The control socket's `export`: stages an export of the cache and resolves with the file. */
  stageExport(
    params: { recipient: string },
    notify: (progress: ExportProgress) => void,
  ): Promise<{ file: string; manifest: ExportManifest }>;
  /** Where a config applied from the page goes, and how the gateway takes it up. */
  target: {
    /** The running gateway's config (its identity and data directory may not change). */
    config(): AttacheConfig;
    /** The config file the gateway runs on; undefined when it was started without one. */
    configPath: string | undefined;
    reload(): Promise<void>;
    health(): Promise<HealthReport>;
    logger: Logger;
  };
}

/** The running gateway as its control socket sees it. */
export interface ControlTarget {
  /** Each listener in this set is called with every record once it is stored (`watch`). */
  stored: Set<(record: AttacheRecord) => void>;
  /** The open cache; throws ATTACHE_CANCELED when the gateway is not running. */
  cache(): LevelCache;
  config(): AttacheConfig;
  status(): Promise<GatewayStatus>;
  sync(): Promise<WindowResult>;
  rescan(): { retried: string[] };
}

/** The control socket's methods: `watch`, `export`, `signing-key`, `status`, `sync`, `rescan`. */
export function controlHandler(gateway: ControlTarget): ControlHandler {
  return (method, params, notify, closed) => {
    switch (method) {
      case 'watch':
        return import('./watch.js').then((m) => m.watchReadings(gateway.stored, notify, closed));
      // The export code (and @attache/cache's export writer) is loaded at the first export only.
      case 'export': {
        const config = gateway.config();
        const cache = gateway.cache();
        return import('./export-service.js').then((m) =>
          m.stageExport(
            cache,
            { dataDir: config.gateway.dataDir, signingKey: gatewayPaths(config).signingKey },
            params,
            notify,
          ),
        );
      }
      case 'signing-key': {
        const { signingKey } = gatewayPaths(gateway.config());
        return import('./export-service.js').then((m) => m.signingKeyInfo(signingKey));
      }
      case 'status':
        return gateway.status();
      case 'sync':
        return gateway.sync();
      case 'rescan':
        return Promise.resolve(gateway.rescan());
      default:
        return Promise.reject(new TypeError(`unknown control method "${method}"`));
    }
  };
}
