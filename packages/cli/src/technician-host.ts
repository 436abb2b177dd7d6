// The gateway's side of the technician page: what the page shows and does, from the running gateway.
import { access } from 'node:fs/promises';
import type { AttacheConfig, AttacheRecord, Logger, WindowResult } from '@attache/core';
import type { GatewayStatus } from '@attache/gateway';
import {
  liveReading,
  type TechnicianHost,
  TechnicianServer,
  type TechnicianStatus,
  technicianSecretPath,
} from '@attache/technician';
import { provisioningFile, readProvisioning } from './provisioning.js';
import {
  ConfigApplier,
  type ConfigTarget,
  checkCandidate,
  listPorts,
  probePort,
} from './technician-actions.js';

/** What the gateway lends the page. */
export interface TechnicianDeps {
  status(): Promise<GatewayStatus>;
  sync(): Promise<WindowResult>;
  /** The gateway calls each listener in this set with every record once it is stored. */
  stored: Set<(record: AttacheRecord) => void>;
  /** Where a config applied from the page goes, and how the gateway takes it up. */
  target: ConfigTarget;
}

/** The {@link TechnicianHost} of a running gateway. */
export function technicianHost(config: AttacheConfig, deps: TechnicianDeps): TechnicianHost {
  const applier = new ConfigApplier(deps.target);
  return {
    async status(): Promise<TechnicianStatus> {
      const s = await deps.status();
      const provisioning = await readProvisioning(provisioningFile());
      const synchronized = await access(config.gateway.clockSyncFile).then(
        () => true,
        () => false,
      );
      return {
        gatewayId: s.gatewayId,
        startedAt: s.startedAt,
        adapters: s.adapters,
        backlog: s.backlog,
        lastWindow: s.lastWindow,
        uplink: { configured: s.uplink.configured, windowOpen: s.uplink.windowOpen },
        ...(provisioning ? { provisioning: provisioning.state } : {}),
        ...(provisioning?.certificate ? { certificateNotAfter: provisioning.certificate.notAfter } : {}),
        clockSynchronized: synchronized,
      };
    },
    onReading(listener) {
      const forward = (record: AttacheRecord) => listener(liveReading(record));
      deps.stored.add(forward);
      return () => deps.stored.delete(forward);
    },
    openWindow: () => deps.sync(),
    ports: () => listPorts(deps.target.config()),
    probe: probePort,
    config: () => applier.current(),
    checkConfig: (candidate) => checkCandidate(candidate, deps.target.config()),
    applyConfig: (candidate) => applier.apply(candidate),
  };
}

/**
 * Starts the technician page when the config has a `technician` section; undefined otherwise
 * (nothing listens, nothing is loaded per reading). A page that cannot start is logged and left
 * off: acquisition never depends on it.
 */
export async function startTechnicianPage(
  config: AttacheConfig,
  logger: Logger,
  deps: TechnicianDeps,
): Promise<TechnicianServer | undefined> {
  const page = config.technician;
  if (!page) return undefined;
  const server = new TechnicianServer({
    listen: page.listen,
    port: page.port,
    sessionMinutes: page.sessionMinutes,
    secretPath: technicianSecretPath(config.gateway.dataDir),
    host: technicianHost(config, deps),
    logger: logger.child({ module: 'technician' }),
  });
  try {
    await server.start();
    return server;
  } catch (err) {
    logger.error({ err }, 'the technician page could not start: it stays off');
    await server.stop();
    return undefined;
  }
}
