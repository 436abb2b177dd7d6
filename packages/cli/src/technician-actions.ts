// What the technician page does on the gateway: ports, a probe, a config checked as `attache config
// validate` checks it and applied as a config-update job is (the same code, not a copy).
import { readFile, realpath } from 'node:fs/promises';
import {
  heardKeys,
  listSerialPorts,
  type ProbeTrial,
  probeConfigSnippet,
  probeSerialPort,
} from '@attache/adapter-rs232';
import { type AttacheConfig, type ConfigIssue, isGatewayError, type Logger } from '@attache/core';
import { checkConfig, checkConfigFiles, configAdvice, sameIdentity } from '@attache/gateway';
import { ConfigUpdater, type HealthReport } from '@attache/jobs';
import type { ConfigApplied, ConfigCheck, PortInfo, ProbeOutcome, ProbeProgress } from '@attache/technician';
import { problemText, protocolNames } from './commands/probe.js';

/** What applying a config needs of the gateway. */
export interface ConfigTarget {
  /** The running gateway's config (its identity and data directory may not change). */
  config(): AttacheConfig;
  /** The config file the gateway runs on; undefined when it was started without one. */
  configPath: string | undefined;
  reload(): Promise<void>;
  health(): Promise<HealthReport>;
  logger: Logger;
}

function setting(trial: ProbeTrial): string {
  const { baudRate, dataBits, parity, stopBits } = trial.setting;
  return `${baudRate} ${dataBits}${parity === 'none' ? 'N' : 'E'}${stopBits}`;
}

/** The serial ports, with the configured device using each (by its path or a stable name). */
export async function listPorts(config: AttacheConfig): Promise<PortInfo[]> {
  const used = new Map<string, string>();
  for (const device of config.devices) {
    if (device.adapter !== 'rs232') continue;
    used.set(await realpath(device.port.path).catch(() => device.port.path), device.id);
  }
  return (await listSerialPorts()).map((p) => ({
    path: p.path,
    links: p.links,
    usedBy: used.get(p.path) ?? null,
    heldBy: p.heldBy.filter((h) => h.pid !== process.pid).map((h) => `pid ${h.pid} (${h.command})`),
  }));
}

/** `attache probe` for the page: counts per setting while listening, then the suggested device. */
export async function probePort(
  path: string,
  seconds: number,
  onProgress: (progress: ProbeProgress) => void,
): Promise<ProbeOutcome> {
  const result = await probeSerialPort({
    path,
    seconds,
    onTrial: (trial) =>
      onProgress({
        setting: setting(trial),
        bytes: trial.score.bytes,
        lines: trial.score.lines,
        keyValueLines: trial.score.kvLines,
        ...(trial.error ? { error: trial.error } : {}),
      }),
  });
  if (result.problem) {
    return {
      path,
      recognized: null,
      setting: null,
      keys: [],
      suggested: null,
      problem: await problemText(path, result.problem),
    };
  }
  const best = result.best;
  if (best === null) return { path, recognized: null, setting: null, keys: [], suggested: null };
  const protocol = best.score.protocol;
  const keys = protocol === 'kv-line' ? heardKeys(best.heard) : undefined;
  return {
    path,
    recognized: protocolNames[protocol],
    setting: setting(best),
    keys: keys ? [...keys.numbers, ...keys.statusWords] : [],
    // A plain-text line's pattern is built from the line itself, which may name a patient: not shown.
    suggested: protocol === 'text-line' ? null : probeConfigSnippet(result, 'device-2'),
  };
}

/** The checks of `attache config validate` on this box, plus what a config update may not change. */
export async function checkCandidate(candidate: unknown, running: AttacheConfig): Promise<ConfigCheck> {
  try {
    const config = checkConfig(candidate);
    sameIdentity(config, running.gateway.id, running.gateway.dataDir);
    const issues = await checkConfigFiles(config);
    return { valid: issues.length === 0, issues, warnings: configAdvice(config) };
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) throw err;
    const issues: ConfigIssue[] = err.issues.length > 0 ? err.issues : [{ path: '/', message: err.message }];
    return { valid: false, issues, warnings: [] };
  }
}

/** Applies configs one at a time, as a config-update job does (ConfigUpdater). */
export class ConfigApplier {
  readonly #target: ConfigTarget;
  #busy = false;

  constructor(target: ConfigTarget) {
    this.#target = target;
  }

  async current(): Promise<unknown> {
    const path = this.#target.configPath;
    return path === undefined ? this.#target.config() : JSON.parse(await readFile(path, 'utf8'));
  }

  async apply(candidate: unknown): Promise<ConfigApplied> {
    const { configPath, reload, health, logger } = this.#target;
    if (configPath === undefined)
      return { applied: false, issues: [], reason: 'this gateway runs without a config file' };
    if (this.#busy) return { applied: false, issues: [], reason: 'another config is being applied' };
    const check = await checkCandidate(candidate, this.#target.config());
    if (!check.valid)
      return { applied: false, issues: check.issues, reason: 'the config has problems: nothing changed' };
    this.#busy = true;
    const running = this.#target.config();
    const updater = new ConfigUpdater({
      configPath,
      validate: (config) => sameIdentity(checkConfig(config), running.gateway.id, running.gateway.dataDir),
      restart: () => reload(),
      healthCheck: () => health(),
    });
    try {
      await updater.applyContent(Buffer.from(JSON.stringify(candidate)), {
        mode: 'replace',
        resumed: false,
        log: logger.child({ module: 'technician' }),
      });
      return { applied: true, issues: [] };
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      return { applied: false, issues: err.issues, reason: err.message };
    } finally {
      this.#busy = false;
    }
  }
}
