import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayError, writeDurably } from '@attache/core';

/** Where a release trial stands. */
export type TrialState = 'trial' | 'healthy' | 'rolled-back';

/**
 * The trial of a newly installed release: written before the switch to it, read by the restarted
 * process and by the rollback guard the service manager runs before every start.
 */
export interface TrialRecord {
  /** `trial` until the new release started healthy (`healthy`) or was switched back (`rolled-back`). */
  state: TrialState;
  /** The software-update job execution that installs the release. */
  jobId: string;
  executionNumber: number;
  version: string;
  /** The new release, relative to the install root (`releases/<version>`). */
  release: string;
  /** The release to roll back to, relative to the install root. */
  previous: string;
  /** Starts of the new release counted by the rollback guard. */
  attempts: number;
  /** Why it was rolled back (one line). */
  reason?: string;
}

/** Options of {@link ReleaseTrial}. */
export interface ReleaseTrialOptions {
  /** The marker file, e.g. `<dataDir>/jobs/release-trial`; its directory must exist. */
  file: string;
  /** The install root holding `releases/`, `current` and `previous`. */
  root: string;
}

const keys: Record<string, keyof TrialRecord> = {
  state: 'state',
  job_id: 'jobId',
  execution_number: 'executionNumber',
  version: 'version',
  release: 'release',
  previous: 'previous',
  attempts: 'attempts',
  reason: 'reason',
};

/**
 * The release trial marker: `key=value` lines (so that the shell guard outside the release can read
 * and rewrite it), replaced atomically (tmp + fsync + rename). Format, in this order:
 * `state`, `job_id`, `execution_number`, `version`, `release`, `previous`, `attempts`, `reason`.
 */
export class ReleaseTrial {
  readonly #file: string;
  readonly #root: string;

  /** Keeps the paths; no I/O. Throws a TypeError when either is not a non-empty string. */
  constructor(options: ReleaseTrialOptions) {
    if (typeof options?.file !== 'string' || options.file === '')
      throw new TypeError('"file" must be a non-empty string');
    if (typeof options.root !== 'string' || options.root === '')
      throw new TypeError('"root" must be a non-empty string');
    this.#file = options.file;
    this.#root = options.root;
  }

  /** The install root. */
  get root(): string {
    return this.#root;
  }

  /** The marker; undefined when there is none. Rejects ATTACHE_MALFORMED when it cannot be parsed. */
  async read(): Promise<TrialRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const record: Record<string, string | number> = {};
    for (const line of text.split('\n')) {
      const at = line.indexOf('=');
      const key = keys[line.slice(0, at)];
      if (at > 0 && key) record[key] = line.slice(at + 1);
    }
    record.executionNumber = Number(record.executionNumber);
    record.attempts = Number(record.attempts ?? 0);
    if (!['trial', 'healthy', 'rolled-back'].includes(String(record.state)) || !record.release) {
      throw new GatewayError('ATTACHE_MALFORMED', `the release trial marker ${this.#file} is not valid`);
    }
    if (record.reason === '') delete record.reason;
    return record as unknown as TrialRecord;
  }

  /** Replaces the marker atomically. */
  async write(record: TrialRecord): Promise<void> {
    const line = (value: string | number | undefined) => String(value ?? '').replace(/[\r\n]+/g, ' ');
    const text = Object.entries(keys)
      .map(([name, key]) => `${name}=${line(record[key])}`)
      .join('\n');
    await writeDurably(this.#file, `${text}\n`);
  }

  /** The marker when it names `release` in trial and `current` points at it: this start is its trial. */
  async pending(): Promise<TrialRecord | undefined> {
    const record = await this.read();
    if (record?.state !== 'trial') return undefined;
    const current = await readlink(join(this.#root, 'current')).catch(() => undefined);
    return current === record.release ? record : undefined;
  }

  /** Marks the trial healthy: the job reports SUCCEEDED in the next window. */
  async markHealthy(record: TrialRecord): Promise<void> {
    await this.write({ ...record, state: 'healthy' });
  }

  /**
   * Marks the trial rolled back with `reason`. `current` is switched back to `previous` before the
   * next start, by whoever owns the install root (on the appliance root, through
   * `attache-release-switch-back` in attache.service): the service cannot, and need not, change it.
   */
  async rollBack(record: TrialRecord, reason: string): Promise<void> {
    await this.write({ ...record, state: 'rolled-back', reason });
  }
}
