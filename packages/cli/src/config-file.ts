import { readFile } from 'node:fs/promises';
// The pure register-map check only: the adapter itself (and modbus-serial) loads when a device needs it.
import { checkModbusConfig } from '@attache/adapter-modbus/check-config';
import { type AttacheConfig, GatewayError, validateConfig } from '@attache/core';
// The unit check only (a parser and the UCUM table), not the normalizer.
import { checkConfigUnits } from '@attache/normalizer/check-units';
import { checkRoutes, checkSchedules } from '@attache/uplink/policy';

/** The config file used when neither `--config` nor `$ATTACHE_CONFIG` names one. */
export const defaultConfigPath = '/etc/attache/config.json';

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
  // What the schema cannot say: a device's profile must exist, a register must fit its table, and
  // uplink routes must name known devices, each in one route only; a window slot must not be empty.
  const issues = [...checkModbusConfig(config), ...checkRoutes(config), ...checkSchedules(config)];
  // Units must be UCUM (`bpm` is refused with "/min" suggested).
  issues.push(...checkConfigUnits(config));
  if (issues.length > 0) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `config is invalid (${issues.length} problems)`, {
      issues,
    });
  }
  return config;
}
