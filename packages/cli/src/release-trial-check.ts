// The first start of a release installed by a software-update job (the trial): `attache run` checks
// its own health and marks the trial healthy, or switches `current` back and asks for a restart.
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@attache/core';
import { controlRequest, jobsPaths } from '@attache/gateway/client';
import { ReleaseTrial } from '@attache/jobs/release-trial';

/**
 * The exit status of `attache run` when it must be started again (a software update switched
 * `current`, or a trial was rolled back): the unit restarts it (`RestartForceExitStatus=75`); outside
 * systemd, the supervisor must (EX_TEMPFAIL from sysexits.h).
 */
export const exitRestart = 75;

/**
 * The install root of the running app (holding `releases/<version>`, `current`, `previous`) from
 * `$ATTACHE_INSTALL_ROOT` (the unit sets `/opt/attache`); undefined when unset: software updates
 * are then not enabled.
 */
export function installRoot(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.ATTACHE_INSTALL_ROOT || undefined;
}

/**
 * The root release installer's Unix socket from `$ATTACHE_RELEASE_INSTALLER` (the unit sets
 * `/run/attache-release-install.sock`): software updates are installed by it, root-owned. Undefined
 * when unset: they are unpacked into the install root by the service itself (outside the appliance).
 */
export function releaseInstaller(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.ATTACHE_RELEASE_INSTALLER || undefined;
}

/**
 * Whether this start is the trial of a new release, read before any config: from the marker file
 * `$ATTACHE_RELEASE_TRIAL` names (the unit sets the one its rollback guard counts in) under the
 * install root. False when either variable is unset.
 */
export async function releaseOnTrial(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const root = installRoot(env);
  const file = env.ATTACHE_RELEASE_TRIAL;
  if (root === undefined || !file) return false;
  return (await new ReleaseTrial({ file, root }).pending().catch(() => undefined)) !== undefined;
}

/** The release `current` names (e.g. `releases/1.1.0`); undefined when unknown. */
export async function currentRelease(root: string | undefined): Promise<string | undefined> {
  if (root === undefined) return undefined;
  return readlink(join(root, 'current')).catch(() => undefined);
}

/** Options of {@link ReleaseTrialCheck}. */
export interface ReleaseTrialCheckOptions {
  root: string;
  dataDir: string;
  logger: Logger;
}

/**
 * The new process's half of a software update: when this start is the trial of the release `current`
 * names, confirms it once the gateway runs (control socket answering), or rolls it back when the
 * gateway cannot start.
 */
export class ReleaseTrialCheck {
  readonly #trial: ReleaseTrial;
  readonly #log: Logger;

  constructor(options: ReleaseTrialCheckOptions) {
    this.#trial = new ReleaseTrial({ file: jobsPaths(options.dataDir).trial, root: options.root });
    this.#log = options.logger.child({ module: 'release-trial' });
  }

  /**
   * The gateway started (cache open, adapters started, control socket listening): asks its control
   * socket for its status and, when it answers, marks the trial healthy. Resolves false when this
   * start is no trial; rejects when the gateway does not answer.
   */
  async confirm(socket: string): Promise<boolean> {
    const trial = await this.#trial.pending();
    if (!trial) return false;
    await controlRequest(socket, 'status', 10_000);
    await this.#trial.markHealthy(trial);
    this.#log.info({ version: trial.version, attempts: trial.attempts }, 'new release runs healthy');
    return true;
  }

  /**
   * The gateway failed to start: when this start is a trial, marks it rolled back and resolves true
   * (exit with {@link exitRestart}: before the next start, the unit's attache-release-switch-back
   * switches `current` back to the previous release, as root); false otherwise.
   */
  async rollBack(reason: string): Promise<boolean> {
    const trial = await this.#trial.pending();
    if (!trial) return false;
    const why = `release ${trial.version} unhealthy: ${reason}; rolled back to ${trial.previous}`;
    await this.#trial.rollBack(trial, why);
    this.#log.error({ version: trial.version, previous: trial.previous }, 'new release rolled back');
    return true;
  }
}
