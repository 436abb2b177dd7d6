import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '@attache/cache';
import type { JobsConfig, Logger } from '@attache/core';
import { ArtifactSource, FileDeliveryHandler, HttpsFetcher, JobsAgent } from '@attache/jobs';
import type { WindowHost } from '@attache/uplink';

/** Where a gateway keeps what jobs deliver, under its data directory (`attache files` reads `files`). */
export function jobsPaths(dataDir: string): { files: string; staging: string; state: string } {
  return {
    files: join(dataDir, 'files'),
    staging: join(dataDir, 'jobs', 'artifacts'),
    state: join(dataDir, 'jobs', 'state.json'),
  };
}

/**
 * The window's AWS IoT Jobs runner: takes the thing's pending jobs on the window's connection and
 * delivers signed files into the file store. Artifacts are staged apart and reach `files` only once
 * their SHA-256 and signature are verified. Rejects when the public key or CA file cannot be read.
 */
export async function jobsRunner(options: {
  thingName: string;
  dataDir: string;
  config: JobsConfig;
  logger: Logger;
}): Promise<NonNullable<WindowHost['runJobs']>> {
  const { thingName, dataDir, config, logger } = options;
  const paths = jobsPaths(dataDir);
  const publicKeyPem = await readFile(config.publicKeyFile, 'utf8');
  const ca = config.caFile === undefined ? undefined : await readFile(config.caFile);
  const files = new FileStore({ path: paths.files, logger });
  const staging = new FileStore({ path: paths.staging, logger });
  await files.open();
  await staging.open();
  const artifacts = new ArtifactSource({
    store: staging,
    fetcher: new HttpsFetcher({ ...(ca === undefined ? {} : { ca }), logger }),
    publicKeyPem,
  });
  return async (channel, signal) => {
    const agent = new JobsAgent({
      thingName,
      channel,
      stateFile: paths.state,
      artifacts,
      handlers: { 'file-delivery': new FileDeliveryHandler(files) },
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
