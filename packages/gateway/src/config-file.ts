import { readFile } from 'node:fs/promises';
// The pure register-map check only: the adapter itself (and modbus-serial) loads when a device needs it.
import { checkModbusConfig } from '@attache/adapter-modbus/check-config';
import { type AttacheConfig, GatewayError, validateConfig } from '@attache/core';
// The unit check only (a parser and the UCUM table), not the normalizer.
import { checkConfigUnits } from '@attache/normalizer/check-units';
import { checkRoutes, checkSchedules } from '@attache/uplink/policy';
import { type ConfigAdvice, configAdvice } from './config-advice.js';
import { checkConfigFiles, checkDevices } from './config-check.js';

export { defaultConfigPath } from './paths.js';

/**
 * Reads, parses and validates a config file (the schema, then the Modbus register maps); `$ATTACHE_DATA` overrides `gateway.dataDir`.
 * Throws GatewayError `ATTACHE_CONFIG_INVALID` with every problem in `issues`.
 */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<AttacheConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : 'file not readable';
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `cannot read config: ${reason}`, {
      cause: err,
      issues: [{ path: '/', message: reason }],
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const message = `not valid JSON (${(err as Error).message})`;
    throw new GatewayError('ATTACHE_CONFIG_INVALID', message, {
      cause: err,
      issues: [{ path: '/', message }],
    });
  }
  const config = checkConfig(parsed);
  if (env.ATTACHE_DATA) config.gateway.dataDir = env.ATTACHE_DATA;
  return config;
}

/**
 * Validates a parsed config as a config file is (the schema with its defaults, then the Modbus
 * register maps and the uplink routes): what a config update must pass. Throws GatewayError `ATTACHE_CONFIG_INVALID`.
 */
export function checkConfig(parsed: unknown): AttacheConfig {
  const config = validateConfig(parsed);
  // What the schema cannot say: device ids are unique, ports are device paths, patterns compile, a
  // device's profile must exist, a register must fit its table, uplink routes must name known
  // devices, each in one route only, and a window slot must not be empty.
  const issues = [
    ...checkDevices(config),
    ...checkModbusConfig(config),
    ...checkRoutes(config),
    ...checkSchedules(config),
  ];
  // Units must be UCUM (`bpm` is refused with "/min" suggested).
  issues.push(...checkConfigUnits(config));
  if (issues.length > 0) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `config is invalid (${issues.length} problems)`, {
      issues,
    });
  }
  return config;
}

/** Options of {@link inspectConfig}. */
export interface InspectOptions {
  /**
   * Checking a config away from the gateway (a laptop, CI): problems with the files it names and its
   * serial ports are warnings, not errors. Default false: they are errors.
   */
  offline?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * The one check of a config file that `attache run` and `attache config validate` share, so that they
 * never disagree: {@link loadConfig}, then the files and ports the config names on this machine
 * ({@link checkConfigFiles}). Resolves the config and the warnings (config advice, and with
 * `offline` the file problems); throws GatewayError `ATTACHE_CONFIG_INVALID` with every error.
 */
export async function inspectConfig(
  path: string,
  options: InspectOptions = {},
): Promise<{ config: AttacheConfig; warnings: ConfigAdvice[] }> {
  const config = await loadConfig(path, options.env);
  const files = await checkConfigFiles(config);
  const warnings = configAdvice(config);
  if (options.offline) return { config, warnings: [...files, ...warnings] };
  if (files.length > 0) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `config is invalid (${files.length} problems)`, {
      issues: files,
    });
  }
  return { config, warnings };
}
