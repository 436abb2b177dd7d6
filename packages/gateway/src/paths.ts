import { join } from 'node:path';
import type { AttacheConfig } from '@attache/core';

/** The config file used when neither `--config` nor `$ATTACHE_CONFIG` names one. */
export const defaultConfigPath = '/etc/attache/config.json';

/**
 * Where a gateway keeps its files under its data directory. Apart from gateway.ts so that commands
 * that only talk to the control socket load nothing else.
 */
export function gatewayPaths(config: AttacheConfig): {
  cache: string;
  keyFile: string;
  socket: string;
  signingKey: string;
} {
  const dir = config.gateway.dataDir;
  return {
    cache: join(dir, 'cache'),
    keyFile: config.cache.keyFile ?? join(dir, 'keys', 'cache.key'),
    socket: join(dir, 'attache.sock'),
    /** The gateway's export-signing key (ECDSA P-256, PEM, 0600): it signs every `cache export`. */
    signingKey: join(dir, 'keys', 'export-signing.key'),
  };
}

/** Where the box's fleet-provisioning progress is kept (`uplink.provisioning`). */
export function provisioningDir(config: AttacheConfig): string {
  return join(config.gateway.dataDir, 'provisioning');
}

/** Where a running gateway stages an export until the command copies it out. */
export function exportStaging(dataDir: string): string {
  return join(dataDir, 'exports');
}
