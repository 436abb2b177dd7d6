import { join } from 'node:path';
import { type AttacheConfig, GatewayError } from '@attache/core';

// Kept apart from window-jobs.ts (the jobs agent, loaded only by the window process) so that the
// gateway and the command line use these without loading @attache/jobs.

/** Where a gateway keeps what jobs deliver, under its data directory (`attache files` reads `files`). */
export function jobsPaths(dataDir: string): { files: string; staging: string; state: string; trial: string } {
  return {
    files: join(dataDir, 'files'),
    staging: join(dataDir, 'jobs', 'artifacts'),
    state: join(dataDir, 'jobs', 'state.json'),
    trial: join(dataDir, 'jobs', 'release-trial'),
  };
}

/**
 * A config update may not move the gateway to another identity or data directory: the cache, its
 * key and the jobs' own state live there. Throws ATTACHE_CONFIG_INVALID (the job is REJECTED).
 */
export function sameIdentity(config: AttacheConfig, thingName: string, dataDir: string): void {
  const issues = [];
  if (config.gateway.id !== thingName)
    issues.push({ path: '/gateway/id', message: 'cannot be changed by a job' });
  if ((process.env.ATTACHE_DATA ?? config.gateway.dataDir) !== dataDir) {
    issues.push({ path: '/gateway/dataDir', message: 'cannot be changed by a job' });
  }
  if (issues.length > 0)
    throw new GatewayError('ATTACHE_CONFIG_INVALID', 'config update refused', { issues });
}
