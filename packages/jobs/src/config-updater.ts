import { readFile } from 'node:fs/promises';
import { isGatewayError, type Logger, writeDurably } from '@attache/core';
import type { ConfigUpdateJob } from './generated/job-document.js';
import type { ApplyContext, JobHandler } from './handler.js';
import { failed, rejected } from './job-status-error.js';
import { applyMergePatch } from './merge-patch.js';

/** The outcome of a health check. */
export interface HealthReport {
  healthy: boolean;
  /** Why not, for the job's status reason (e.g. "adapter spo2-bed7 failed: port not found"). */
  reason?: string;
}

/** Options of {@link ConfigUpdater}. */
export interface ConfigUpdaterOptions {
  /** The gateway's config file; the previous one is kept beside it as `<configPath>.prev`. */
  configPath: string;
  /** The validator of a local config (core's `validateConfig`): throws ATTACHE_CONFIG_INVALID. */
  validate: (config: unknown) => unknown;
  /** Restarts the gateway on the config file now in place; resolves once it was started. */
  restart: () => Promise<void>;
  /** E.g. "adapters started and no fatal error within N s" on the running config. */
  healthCheck: () => Promise<HealthReport>;
}

/**
 * Applies config-update jobs: validated like a local config, written atomically with the previous
 * file kept as `.prev`, the gateway restarted and health-checked, rolled back when unhealthy.
 */
export class ConfigUpdater implements JobHandler<ConfigUpdateJob> {
  readonly #options: ConfigUpdaterOptions;
  readonly #prevPath: string;

  /** Keeps the options; no I/O. Throws a TypeError when `configPath` is not a non-empty string. */
  constructor(options: ConfigUpdaterOptions) {
    if (typeof options?.configPath !== 'string' || options.configPath === '') {
      throw new TypeError('"configPath" must be a non-empty string');
    }
    this.#options = options;
    this.#prevPath = `${options.configPath}.prev`;
  }

  /**
   * Resolves `{ config: 'applied' }` once the new config runs healthy. Rejects JobStatusError
   * REJECTED (nothing changed) when the artifact is not JSON or fails validation, FAILED when the
   * gateway is unhealthy on it (the previous config was restored and the gateway restarted on it).
   * Resumed after a crash, a file already equal to the new config is kept, not rewritten nor
   * restarted again, and health-checked.
   */
  apply(context: ApplyContext<ConfigUpdateJob>): Promise<Record<string, string>> {
    return this.applyContent(context.content, {
      mode: context.document.mode,
      resumed: context.resumed,
      log: context.log,
    });
  }

  /**
   * {@link apply} for a config that did not come in a job (the technician page applies one): the same
   * validation, write, restart, health check and rollback, with the same outcomes.
   */
  async applyContent(
    content: Buffer,
    options: { mode: ConfigUpdateJob['mode']; resumed: boolean; log: Logger },
  ): Promise<Record<string, string>> {
    const { configPath } = this.#options;
    const context = { ...options, content };
    const current = await readFile(configPath, 'utf8');
    const next = this.#build(current, content, options.mode);
    if (next !== current) {
      await writeDurably(this.#prevPath, current);
      await writeDurably(configPath, next);
      context.log.info('new config written; previous kept as .prev');
      await this.#options.restart();
    } else if (!context.resumed) {
      await this.#options.restart();
    }
    // Resumed with the new file already in place: the gateway was (re)started on it after the
    // crash, so only its health is left to check.
    const health = await this.#options.healthCheck();
    if (health.healthy) return { config: 'applied' };
    const reason = `unhealthy on the new config: ${health.reason ?? 'health check failed'}; rolled back`;
    context.log.warn({ reason: health.reason }, 'config rolled back');
    await this.rollback();
    throw failed('ATTACHE_CONFIG_INVALID', reason);
  }

  /** Restores `.prev` over the config file (atomically) and restarts the gateway on it. */
  async rollback(): Promise<void> {
    const previous = await readFile(this.#prevPath, 'utf8');
    await writeDurably(this.#options.configPath, previous);
    await this.#options.restart();
  }

  /** The new file's text; REJECTED when unreadable or invalid. */
  #build(current: string, content: Buffer, mode: ConfigUpdateJob['mode']): string {
    const incoming = parseJson(content.toString('utf8'), 'the new config');
    // A merge patch is idempotent: re-applied after a crash to the already patched file, it gives
    // the same file, which is then not rewritten.
    const config =
      mode === 'merge-patch' ? applyMergePatch(parseJson(current, 'the current config'), incoming) : incoming;
    try {
      this.#options.validate(config);
    } catch (err) {
      if (isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) {
        const issues = err.issues.map((i) => `${i.path} ${i.message}`).join('; ');
        throw rejected('ATTACHE_CONFIG_INVALID', `invalid config: ${issues || err.message}`, err);
      }
      throw err;
    }
    return `${JSON.stringify(config, null, 2)}\n`;
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw rejected('ATTACHE_CONFIG_INVALID', `${what} is not valid JSON`, err);
  }
}
