import { existsSync } from 'node:fs';
import { type AttacheConfig, isGatewayError } from '@attache/core';
import { type ConfigAdvice, controlRequest, defaultConfigPath, gatewayPaths } from '@attache/gateway/client';
import type { Argv } from 'yargs';
import { formatIssues } from '../report.js';

export { type CommonArgs, fail, jsonOption, printable } from './args.js';

/** The exit code of an invalid config (EX_CONFIG from sysexits.h). */
export const exitConfig = 78;

/** `--config` (default `$ATTACHE_CONFIG` or the installed path). */
export const configOption = () =>
  ({
    alias: 'c',
    type: 'string',
    description: 'config file (JSON)',
    default: process.env.ATTACHE_CONFIG ?? defaultConfigPath,
  }) as const;

/** Adds `--config` (configOption). */
export function withConfig<T>(y: Argv<T>) {
  return y.option('config', configOption());
}

/**
 * Loads and validates the config; on problems prints `preface` (when given) on stdout, then every
 * problem as `path: message`, and exits `exitCode` (78 unless told otherwise).
 */
export function readConfig(path: string, preface?: string, exitCode = exitConfig): Promise<AttacheConfig> {
  // Loaded when a command reads its config: `attache modbus read` and `--help` start without the config check.
  const loading = import('@attache/gateway/client').then(({ loadConfig }) => loadConfig(path));
  return orExit(path, loading, preface, exitCode);
}

/**
 * What `attache run` and `attache config validate` read: the config checked in full, its files and
 * ports on this machine included (see inspectConfig), with its warnings. Exits as {@link readConfig}.
 */
export function readCheckedConfig(
  path: string,
  options: { offline?: boolean; exitCode?: number } = {},
): Promise<{ config: AttacheConfig; warnings: ConfigAdvice[] }> {
  return orExit(
    path,
    import('@attache/gateway/client').then(({ inspectConfig }) =>
      inspectConfig(path, { offline: options.offline ?? false }),
    ),
    undefined,
    options.exitCode,
  );
}

async function orExit<T>(
  path: string,
  loading: Promise<T>,
  preface?: string,
  exitCode = exitConfig,
): Promise<T> {
  try {
    return await loading;
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) {
      if (preface !== undefined) console.log(preface);
      console.error(formatIssues(path, err.issues));
      process.exit(exitCode);
    }
    throw err;
  }
}

/** How long a command asks again while the gateway holds its cache but does not answer yet. */
const startingWaitMs = 20_000;

/**
 * Asks the running gateway over its control socket, or does it here when none runs. A gateway that
 * is starting (it holds the cache, its socket is not up yet) is asked again for up to 20 s.
 */
export async function viaGateway<T>(
  cfg: AttacheConfig,
  method: string,
  timeoutMs: number,
  local: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + startingWaitMs;
  const socket = gatewayPaths(cfg).socket;
  for (;;) {
    try {
      // No socket file, no gateway listening (a stopped gateway's is removed): not worth a connect.
      // Looked up on this thread: no thread-pool round trip, no error made for a missing file.
      if (existsSync(socket)) return (await controlRequest(socket, method, timeoutMs)) as T;
    } catch (err) {
      if (!isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE')) throw err;
    }
    try {
      return await local();
    } catch (err) {
      // The gateway holds the cache but does not answer yet: it is starting. Ask it again.
      if (!isGatewayError(err, 'ATTACHE_CACHE_LOCKED') || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
