import { execFile } from 'node:child_process';
import { mkdir, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GatewayError, mkdirDurably, syncDir, writeDurably } from '@attache/core';
import { switchSymlink } from './atomic-file.js';
import type { HealthReport } from './config-updater.js';
import type { SoftwareUpdateJob } from './generated/job-document.js';
import type { ApplyContext, JobHandler } from './handler.js';
import { failed, rejected } from './job-status-error.js';
import { askReleaseInstaller } from './release-install-client.js';
import type { ReleaseTrial } from './release-trial.js';

const run = promisify(execFile);

/** Options of {@link ReleaseInstaller}. */
export interface ReleaseInstallerOptions {
  /** The install root: holds `releases/<version>/`, and the `current` and `previous` symlinks. */
  root: string;
  /**
   * Restarts the gateway from the release `current` names. Without `trial`: resolves once it was
   * restarted (in-process), then `healthCheck` runs. With `trial`: resolves once the restart was
   * requested (the process ends after the window and its supervisor starts the new release).
   */
  restart: () => Promise<void>;
  /** The health check after an in-process restart; required without `trial`. */
  healthCheck?: () => Promise<HealthReport>;
  /**
   * Set when the restart ends this process (the service): the trial marker is written before the
   * switch, the new process checks its own health and marks the trial healthy or rolls back (as does
   * the rollback guard when it cannot even start); the job stays IN_PROGRESS across the restart and
   * the next window reports what the marker says.
   */
  trial?: ReleaseTrial;
  /**
   * With `trial`: the Unix socket of the root release installer (the appliance's
   * `attache-release-install.socket`). The install root is then root's: the release is not unpacked
   * here, the signed manifest and the verified bundle are handed to the installer, which verifies
   * them again, installs the release root-owned and switches `current` itself.
   */
  installerSocket?: string;
}

/** Written last into an unpacked release: a release directory without it is incomplete. */
const marker = '.release.json';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function linkTarget(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Applies software-update jobs: the verified bundle (tar.gz) is unpacked beside the running
 * release under `<root>/releases/<version>`, `current` is switched to it atomically (rename of a
 * new symlink), the gateway restarted and health-checked, and `current` switched back to
 * `previous` when unhealthy. Writes nothing outside `root`: never the cache or the keys.
 */
export class ReleaseInstaller implements JobHandler<SoftwareUpdateJob> {
  readonly #options: ReleaseInstallerOptions;

  /** Keeps the options; no I/O. Throws a TypeError when `root` is not a non-empty string. */
  constructor(options: ReleaseInstallerOptions) {
    if (typeof options?.root !== 'string' || options.root === '')
      throw new TypeError('"root" must be a non-empty string');
    if (!options.trial && typeof options.healthCheck !== 'function')
      throw new TypeError('"healthCheck" must be a function when there is no "trial"');
    if (!options.trial && options.installerSocket !== undefined)
      throw new TypeError('"installerSocket" needs a "trial"');
    this.#options = options;
  }

  /**
   * Removes every release but the ones `current` and `previous` name, once the new one runs healthy,
   * so that updates never fill the card; resolves `{ pruned }` (comma-separated) when any went.
   */
  async #prune(context: ApplyContext<SoftwareUpdateJob>): Promise<Record<string, string>> {
    const { root } = this.#options;
    const keep = new Set(
      [await this.current(), await linkTarget(join(root, 'previous'))].filter((t) => t !== undefined),
    );
    const pruned: string[] = [];
    for (const name of await readdir(join(root, 'releases')).catch(() => [])) {
      const release = join('releases', name);
      if (keep.has(release)) continue;
      await rm(join(root, release), { recursive: true, force: true });
      pruned.push(release);
    }
    if (pruned.length === 0) return {};
    context.log.info({ pruned }, 'old releases removed');
    return { pruned: pruned.join(',') };
  }

  /** The release directory `current` points at (relative to root), undefined before the first install. */
  current(): Promise<string | undefined> {
    return linkTarget(join(this.#options.root, 'current'));
  }

  /**
   * Resolves `{ version }` once the new release runs healthy. Rejects JobStatusError REJECTED when
   * the bundle cannot be unpacked (nothing switched), FAILED when unhealthy (switched back to the
   * previous release and restarted). Safe to re-run after a crash at any point: resumed with
   * `current` already on the new release, it does not restart again, it only checks health.
   */
  async apply(context: ApplyContext<SoftwareUpdateJob>): Promise<Record<string, string>> {
    if (this.#options.trial) return this.#applyWithTrial(context, this.#options.trial);
    const { version } = context.document;
    const target = join('releases', version);
    await this.#unpack(context.content, version);
    const running = await this.current();
    if (running !== target) {
      if (running !== undefined) await switchSymlink(join(this.#options.root, 'previous'), running);
      await switchSymlink(join(this.#options.root, 'current'), target);
      context.log.info({ version, from: running }, 'switched to the new release');
      await this.#options.restart();
    } else if (!context.resumed) {
      await this.#options.restart();
    }
    // Resumed with `current` already switched: the crash (or the restart itself) started this
    // process from the new release, so only its health is left to check.
    const health = await (this.#options.healthCheck as () => Promise<HealthReport>)();
    if (health.healthy) return { version, ...(await this.#prune(context)) };
    const previous = await linkTarget(join(this.#options.root, 'previous'));
    if (previous === undefined || previous === target) {
      throw failed(
        'ATTACHE_INTERNAL',
        `release ${version} is unhealthy (${health.reason}) and there is no previous release`,
      );
    }
    await switchSymlink(join(this.#options.root, 'current'), previous);
    await this.#options.restart();
    context.log.warn({ version, previous, reason: health.reason }, 'release rolled back');
    throw failed(
      'ATTACHE_INTERNAL',
      `release ${version} unhealthy: ${health.reason ?? 'health check failed'}; rolled back to ${previous}`,
    );
  }

  /**
   * The service's way: the outcome of a restart is read from the trial marker in the next window.
   * Rejects ATTACHE_CANCELED once the restart onto the new release was requested (the job stays
   * IN_PROGRESS); resolves when the marker says healthy, FAILED when it says rolled back.
   */
  async #applyWithTrial(
    context: ApplyContext<SoftwareUpdateJob>,
    trial: ReleaseTrial,
  ): Promise<Record<string, string>> {
    const { jobId, executionNumber, document } = context;
    const { version } = document;
    const target = join('releases', version);
    const record = await trial.read();
    const ours = record?.jobId === jobId && record.executionNumber === executionNumber ? record : undefined;
    // The root installer prunes the store itself when it installs (the install root is not ours).
    if (ours?.state === 'healthy') {
      return { version, ...(this.#options.installerSocket === undefined ? await this.#prune(context) : {}) };
    }
    if (ours?.state === 'rolled-back') {
      throw failed('ATTACHE_INTERNAL', ours.reason ?? `release ${version} rolled back to ${ours.previous}`);
    }
    const socket = this.#options.installerSocket;
    if (socket === undefined) await this.#unpack(context.content, version);
    const running = await this.current();
    if (running === target && !ours) return { version, note: 'already running' };
    if (running !== target) {
      if (running === undefined)
        throw failed('ATTACHE_INTERNAL', 'no release is running: nothing to roll back to');
      // The marker first: a crash after the switch still finds the trial (and its way back).
      const previous = running;
      await trial.write({
        state: 'trial',
        jobId,
        executionNumber,
        version,
        release: target,
        previous,
        attempts: 0,
      });
      if (socket === undefined) {
        await switchSymlink(join(this.#options.root, 'previous'), previous);
        await switchSymlink(join(this.#options.root, 'current'), target);
      } else {
        const { manifest, signature } = document;
        await askReleaseInstaller(socket, { jobId, executionNumber, manifest, signature }, context.content);
      }
      context.log.info({ version, from: previous }, 'switched to the new release: restarting onto it');
    }
    await this.#options.restart();
    throw new GatewayError(
      'ATTACHE_CANCELED',
      `restarting onto release ${version}; its health is checked after the restart`,
    );
  }

  /** Unpacks into a hidden directory, marks it complete, renames it into place; skipped when done. */
  async #unpack(bundle: Buffer, version: string): Promise<void> {
    const releases = join(this.#options.root, 'releases');
    const final = join(releases, version);
    if (await exists(join(final, marker))) return;
    const partial = join(releases, `.${version}.partial`);
    const archive = join(releases, `.${version}.tar.gz`);
    await mkdirDurably(releases, 0o755);
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial);
    try {
      await writeDurably(archive, bundle);
      // GNU tar strips leading `/` and refuses `..` members; the bundle is signature-verified anyway.
      await run('tar', ['-xzf', archive, '-C', partial, '--no-same-owner']);
    } catch (err) {
      await rm(partial, { recursive: true, force: true });
      throw rejected('ATTACHE_MALFORMED', `release bundle ${version} cannot be unpacked`, err);
    } finally {
      await rm(archive, { force: true });
    }
    await run('sync', ['-f', partial]).catch((err: unknown) => {
      throw new GatewayError('ATTACHE_CACHE_WRITE', 'cannot flush the unpacked release', { cause: err });
    });
    await writeDurably(
      join(partial, marker),
      `${JSON.stringify({ version, installedAt: new Date().toISOString() })}\n`,
    );
    await rm(final, { recursive: true, force: true });
    await rename(partial, final);
    await syncDir(releases);
  }
}
