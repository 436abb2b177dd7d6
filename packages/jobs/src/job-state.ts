import { readFile } from 'node:fs/promises';
import { GatewayError, writeDurably } from '@attache/core';

/** Where a job execution stands on this gateway. */
export type JobPhase = 'started' | 'applying' | 'done';

/** What the gateway remembers of one job execution. */
export interface JobRecord {
  jobId: string;
  executionNumber: number;
  phase: JobPhase;
  /** The terminal status once `phase` is `done`. */
  status?: 'SUCCEEDED' | 'FAILED' | 'REJECTED';
  /** The statusDetails reported with the terminal status. */
  details?: Record<string, string>;
  /** True once the cloud accepted the terminal update. */
  reported?: boolean;
  updatedAt: string;
}

interface StateFile {
  version: 1;
  jobs: JobRecord[];
}

/** Terminal records kept for idempotence; older ones are forgotten. */
const keptRecords = 50;

/**
 * The jobs agent's state: one small JSON file, replaced atomically (tmp + fsync + rename) on every
 * change, so a crash or power cut leaves the last complete state.
 */
export class JobStateStore {
  readonly #path: string;
  #jobs: JobRecord[] | undefined;

  /** Keeps the path; no I/O. */
  constructor(path: string) {
    if (typeof path !== 'string' || path === '') throw new TypeError('"path" must be a non-empty string');
    this.#path = path;
  }

  /** The record of an execution; undefined when this gateway never saw it. */
  async get(jobId: string, executionNumber: number): Promise<JobRecord | undefined> {
    const jobs = await this.#load();
    return jobs.find((j) => j.jobId === jobId && j.executionNumber === executionNumber);
  }

  /** Stores (replaces) the record of an execution and writes the file. Rejects ATTACHE_CACHE_WRITE. */
  async put(record: Omit<JobRecord, 'updatedAt'>): Promise<JobRecord> {
    const jobs = await this.#load();
    const stored: JobRecord = { ...record, updatedAt: new Date().toISOString() };
    const others = jobs.filter(
      (j) => !(j.jobId === record.jobId && j.executionNumber === record.executionNumber),
    );
    const next = [...others, stored].slice(-keptRecords);
    try {
      await writeDurably(this.#path, `${JSON.stringify({ version: 1, jobs: next } satisfies StateFile)}\n`);
    } catch (err) {
      throw new GatewayError('ATTACHE_CACHE_WRITE', 'cannot write the jobs state file', { cause: err });
    }
    this.#jobs = next;
    return stored;
  }

  async #load(): Promise<JobRecord[]> {
    if (this.#jobs) return this.#jobs;
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new GatewayError('ATTACHE_CACHE_WRITE', 'cannot read the jobs state file', { cause: err });
      }
      text = '{"version":1,"jobs":[]}';
    }
    const parsed = JSON.parse(text) as StateFile;
    this.#jobs = Array.isArray(parsed.jobs) ? parsed.jobs : [];
    return this.#jobs;
  }
}
