import { readFile, readlink, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FileStore } from '@attache/cache';
import { GatewayError, type JobsConfig, type Logger } from '@attache/core';
import {
  ArtifactSource,
  ConfigUpdater,
  FileDeliveryHandler,
  HttpsFetcher,
  type JobHandler,
  type JobHandlers,
  JobsAgent,
  ReleaseInstaller,
  ReleaseTrial,
} from '@attache/jobs';
import type { WindowHost } from '@attache/uplink';
import { checkConfig } from './config-file.js';
import { jobsPaths, sameIdentity } from './jobs-paths.js';
import type { UpdateHost, UpdateTargets } from './window-protocol.js';

/** Options of {@link jobsRunner}. */
export interface JobsRunnerOptions {
  thingName: string;
  dataDir: string;
  config: JobsConfig;
  logger: Logger;
  /** Set when a running gateway hosts the window: config and software updates are applied to it. */
  updates?: UpdateTargets & { host: UpdateHost };
}

/**
 * Leaves an update job IN_PROGRESS for the running service: a window opened by `attache sync` on a
 * stopped gateway cannot reload or restart it, and must not REJECT what the service would apply.
 */
const serviceOnly: JobHandler = {
  apply: () =>
    Promise.reject(
      new GatewayError('ATTACHE_CANCELED', 'applied only by the running gateway (attache run): resumed then'),
    ),
};

/**
 * Reads the job-signing public key, refusing it unless it and its directory are owned by root and
 * writable by no one else: a key the service's user could replace would let anyone who takes over
 * the service sign its own jobs. Throws ATTACHE_CONFIG_INVALID naming the file.
 */
export async function readJobSigningKey(path: string): Promise<string> {
  for (const [what, file] of [
    ['the job-signing key', path],
    ['its directory', dirname(path)],
  ] as const) {
    const { uid, mode } = await stat(file);
    if (uid !== 0 || (mode & 0o022) !== 0) {
      const message = `${what} ${file} must be owned by root and writable by no one else (owner uid ${uid}, mode ${(mode & 0o777).toString(8)}): the service's user must not be able to replace it`;
      throw new GatewayError('ATTACHE_CONFIG_INVALID', message, {
        issues: [{ path: '/jobs/publicKeyFile', message }],
      });
    }
  }
  return readFile(path, 'utf8');
}

/** The handler of each operation: file delivery always; updates through the running gateway. */
function handlers(options: JobsRunnerOptions, files: FileStore): JobHandlers {
  const { updates, thingName, dataDir } = options;
  const delivery = new FileDeliveryHandler(files);
  if (!updates)
    return { 'file-delivery': delivery, 'config-update': serviceOnly, 'software-update': serviceOnly };
  const { host, configPath, installRoot, releaseInstaller } = updates;
  const configUpdater = new ConfigUpdater({
    configPath,
    validate: (config) => sameIdentity(checkConfig(config), thingName, dataDir),
    restart: () => host.reload(),
    healthCheck: () => host.health(),
  });
  if (installRoot === undefined) return { 'file-delivery': delivery, 'config-update': configUpdater };
  const softwareUpdates = new ReleaseInstaller({
    root: installRoot,
    restart: () => host.restartAfterWindow(),
    trial: new ReleaseTrial({ file: jobsPaths(dataDir).trial, root: installRoot }),
    ...(releaseInstaller === undefined ? {} : { installerSocket: releaseInstaller }),
  });
  return { 'file-delivery': delivery, 'config-update': configUpdater, 'software-update': softwareUpdates };
}

/**
 * The window's AWS IoT Jobs runner: takes the thing's pending jobs on the window's connection,
 * delivers signed files into the file store and, in a running gateway, applies config updates
 * (reloaded in-process) and software updates (restart onto the new release). Artifacts are staged
 * apart and used only once their SHA-256 and signature are verified. Rejects when the public key or
 * CA file cannot be read.
 */
export async function jobsRunner(options: JobsRunnerOptions): Promise<NonNullable<WindowHost['runJobs']>> {
  const { thingName, dataDir, config, logger } = options;
  const paths = jobsPaths(dataDir);
  const publicKeyPem = await readJobSigningKey(config.publicKeyFile);
  const ca = config.caFile === undefined ? undefined : await readFile(config.caFile);
  const files = new FileStore({ path: paths.files, logger });
  const staging = new FileStore({ path: paths.staging, logger });
  await files.open();
  await staging.open();
  const artifacts = new ArtifactSource({
    store: staging,
    fetcher: new HttpsFetcher({ ...(ca === undefined ? {} : { ca }), logger }),
  });
  const jobHandlers = handlers(options, files);
  const installRoot = options.updates?.installRoot;
  // `current` -> releases/<version>: the version running now, for the downgrade check.
  const runningVersion = async () =>
    installRoot === undefined
      ? undefined
      : readlink(join(installRoot, 'current')).then(basename, () => undefined);
  return async (channel, signal) => {
    const agent = new JobsAgent({
      thingName,
      channel,
      stateFile: paths.state,
      artifacts,
      publicKeyPem,
      thingGroups: config.thingGroups,
      runningVersion,
      handlers: jobHandlers,
      requestTimeoutMs: config.requestTimeoutMs,
      maxJobsPerWindow: config.maxJobsPerWindow,
      logger,
    });
    const { jobs } = await agent.runWindow(signal);
    if (jobs.length > 0) {
      logger.info({ jobs: jobs.map((j) => ({ jobId: j.jobId, status: j.status })) }, 'jobs of this window');
    }
  };
}
