import { type AttacheConfig, GatewayError, isGatewayError } from '@attache/core';
import type { Argv } from 'yargs';
import { defaultConfigPath, loadConfig } from '../config-file.js';
import { controlRequest } from '../control.js';
import { gatewayPaths } from '../paths.js';
import { formatIssues } from '../report.js';

/** The exit code of an invalid config (EX_CONFIG from sysexits.h). */
export const exitConfig = 78;

/** Options every command that reads the config takes. */
export interface CommonArgs {
  config: string;
  json?: boolean;
}

/** Adds `--config` (default `$ATTACHE_CONFIG` or the installed path). */
export function withConfig<T>(y: Argv<T>) {
  return y.option('config', {
    alias: 'c',
    type: 'string',
    description: 'config file (JSON)',
    default: process.env.ATTACHE_CONFIG ?? defaultConfigPath,
  });
}

/** `--json`, for commands whose output scripts read. */
export const jsonOption = { type: 'boolean', description: 'print JSON for scripts', default: false } as const;

/**
 * Loads and validates the config; on problems prints `preface` (when given) on stdout, then every
 * problem as `path: message`, and exits `exitCode` (78 unless told otherwise).
 */
export async function readConfig(
  path: string,
  preface?: string,
  exitCode = exitConfig,
): Promise<AttacheConfig> {
  try {
    return await loadConfig(path);
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) {
      if (preface !== undefined) console.log(preface);
      console.error(formatIssues(path, err.issues));
      process.exit(exitCode);
    }
    throw err;
  }
}

/** Asks the running gateway over its control socket, or does it here when none runs. */
export async function viaGateway<T>(
  cfg: AttacheConfig,
  method: string,
  timeoutMs: number,
  local: () => Promise<T>,
): Promise<T> {
  try {
    return (await controlRequest(gatewayPaths(cfg).socket, method, timeoutMs)) as T;
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE')) return local();
    throw err;
  }
}

/** Prints `attache: CODE: message` and exits 1. */
export function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof GatewayError ? `${err.code}: ` : '';
  console.error(`attache: ${code}${message}`);
  process.exit(1);
}
