// The gateway's side of the technician page: what the page shows and does, from the running gateway.
import { access, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExportManifest } from '@attache/cache';
import {
  type AttacheConfig,
  type AttacheRecord,
  GatewayError,
  isGatewayError,
  type Logger,
  type WindowResult,
} from '@attache/core';
import { copyToStick } from '@attache/files-up';
import type { GatewayPage, GatewayStatus } from '@attache/gateway';
import { type ExportProgress, placeFile } from '@attache/gateway';
import {
  type ExportOutcome,
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
  /** The control socket's `export`: stages an export of the cache and resolves with the file. */
  stageExport(
    params: { recipient: string },
    notify: (progress: ExportProgress) => void,
  ): Promise<{ file: string; manifest: ExportManifest }>;
}

type Progress = Parameters<TechnicianHost['exportToStick']>[0];

/** A refusal as the page shows it: the message, and the code when there is one. */
function refusal(err: unknown): ExportOutcome {
  const code = isGatewayError(err) ? { code: err.code } : {};
  return { records: 0, error: (err as Error).message, ...code };
}

/**
 * `attache cache export` from the page: staged by the gateway (which keeps reading), then written
 * onto the stick's FAT filesystem with mtools (never mounted) under a new name, never over a file
 * there; or into `technician.exportDir` when a config names a mounted stick instead.
 */
async function exportToStick(
  config: AttacheConfig,
  deps: TechnicianDeps,
  onProgress: Progress,
): Promise<ExportOutcome> {
  const page = config.technician;
  const recipientFile = config.cache.exportRecipientFile;
  if (page === undefined || recipientFile === undefined) {
    return { records: 0, error: 'no export recipient is configured (cache.exportRecipientFile)' };
  }
  const dir = page.exportDir;
  const device = page.exportDevice;
  try {
    if (dir !== undefined) {
      if (
        !(await stat(dir).then(
          (s) => s.isDirectory(),
          () => false,
        ))
      ) {
        throw new GatewayError('ATTACHE_NO_STICK', `no USB stick at ${dir}: plug one in`);
      }
    } else if (
      !(await stat(device).then(
        () => true,
        () => false,
      ))
    ) {
      // Asked before staging: without a stick there is nothing to stage for.
      throw new GatewayError('ATTACHE_NO_STICK', `no USB stick at ${device}: plug one in`);
    }
    const staged = await deps.stageExport({ recipient: await readFile(recipientFile, 'utf8') }, onProgress);
    const records = staged.manifest.records;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    // FAT names may not hold `:` (a thing name may).
    const name = `${config.gateway.id.replace(/:/g, '_')}-${stamp}.attache`;
    try {
      if (dir !== undefined) {
        const file = join(dir, name);
        await placeFile(staged.file, file, false);
        return { file, records };
      }
      const written = await copyToStick(device, staged.file, name, (p) =>
        onProgress({ records, total: records, ...p }),
      );
      return { file: written.name, sha256: written.sha256, records };
    } finally {
      await rm(staged.file, { force: true });
    }
  } catch (err) {
    return refusal(err);
  }
}

/** The {@link TechnicianHost} of a running gateway. */
export function technicianHost(config: AttacheConfig, deps: TechnicianDeps): TechnicianHost {
  const applier = new ConfigApplier(deps.target);
  let exporting = false;
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
        canExport: config.cache.exportRecipientFile !== undefined,
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
    exportToStick: async (onProgress) => {
      // One export at a time: two would stage twice and race for the stick.
      if (exporting) return { records: 0, error: 'an export is already being written' };
      exporting = true;
      try {
        // Where to write follows a reloaded `technician` section; the recipient is the cache's, read at start.
        return await exportToStick(
          { ...config, technician: deps.target.config().technician },
          deps,
          onProgress,
        );
      } finally {
        exporting = false;
      }
    },
    // Loaded when asked: the doctor's checks are not in memory otherwise.
    doctor: async () => {
      const configPath = deps.target.configPath;
      if (configPath === undefined) return [];
      const { runDoctor } = await import('./doctor/doctor.js');
      return runDoctor({ configPath, network: false });
    },
  };
}

/**
 * Starts the technician page when the config has a `technician` section; undefined otherwise
 * (nothing listens, nothing is loaded per reading). A page that cannot start is logged and left
 * off: acquisition never depends on it. A reloaded config moves it (`reconfigure`).
 */
export async function startTechnicianPage(
  config: AttacheConfig,
  logger: Logger,
  deps: TechnicianDeps,
): Promise<GatewayPage | undefined> {
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
  } catch (err) {
    logger.error({ err }, 'the technician page could not start: it stays off');
    await server.stop();
    return undefined;
  }
  return {
    stop: () => server.stop(),
    reconfigure: (section) =>
      server.reconfigure({
        listen: section.listen,
        port: section.port,
        sessionMinutes: section.sessionMinutes,
      }),
  };
}
