import { GatewayError, type Logger, nullLogger } from '@attache/core';
import type { ArtifactSource } from './artifact-source.js';
import type { JobDocument } from './generated/job-document.js';
import type { ApplyContext, JobHandler, JobHandlers } from './handler.js';
import { parseJobDocument } from './job-document.js';
import { compareVersions, type JobManifest, verifyJobManifest } from './job-manifest.js';
import { type JobRecord, JobStateStore } from './job-state.js';
import { JobStatusError, rejected } from './job-status-error.js';
import { type JobExecution, JobsClient, JobsRequestRejectedError } from './jobs-client.js';
import { JobsTopics, type MqttChannel } from './mqtt-channel.js';

/** Options of {@link JobsAgent}. */
export interface JobsAgentOptions {
  /** The gateway's AWS IoT thing name. */
  thingName: string;
  /** The window's MQTT connection. */
  channel: MqttChannel;
  /** The agent's state file, e.g. `<dataDir>/jobs/state.json` (its directory must exist). */
  stateFile: string;
  /** Obtains and verifies artifacts. */
  artifacts: ArtifactSource;
  /** The provisioned job-signing public key (PEM, EC P-256) every job manifest must be signed with. */
  publicKeyPem: string;
  /** The thing groups this gateway is in: a job signed for one of them is accepted (default none). */
  thingGroups?: readonly string[];
  /** The release running now (e.g. `1.2.0`), for the downgrade check; undefined: no check. */
  runningVersion?: () => Promise<string | undefined>;
  /** The clock expiries are checked against, in ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** One handler per accepted operation. */
  handlers: JobHandlers;
  /** How long to wait for each answer of the Jobs service, in ms (default 30,000). */
  requestTimeoutMs?: number;
  /** At most this many jobs per window (default 20). */
  maxJobsPerWindow?: number;
  logger?: Logger;
}

/** What became of one job execution in a window. */
export interface JobOutcome {
  jobId: string;
  executionNumber: number;
  /** IN_PROGRESS: interrupted, resumed in the next window. */
  status: 'SUCCEEDED' | 'FAILED' | 'REJECTED' | 'IN_PROGRESS';
  statusDetails: Record<string, string>;
  /** True when this execution was already applied earlier: only its status was reported again. */
  alreadyApplied: boolean;
  /** ms from being handed the execution to its terminal status being accepted by the cloud. */
  durationMs: number;
}

/** The jobs part of one connectivity window. */
export interface JobsWindowResult {
  jobs: JobOutcome[];
  /** True when the window ended (or the service stopped answering) before every pending job was done. */
  interrupted: boolean;
}

type Terminal = { status: 'SUCCEEDED' | 'FAILED' | 'REJECTED'; details: Record<string, string> };

/**
 * Runs the gateway's AWS IoT Jobs in connectivity windows: start-next, verify, apply, report, one
 * job at a time; state persisted so an interrupted job resumes and no job is applied twice.
 */
export class JobsAgent {
  readonly #options: JobsAgentOptions;
  readonly #topics: JobsTopics;
  readonly #state: JobStateStore;
  readonly #log: Logger;

  /** Keeps the options; no I/O. Throws a TypeError on an invalid thing name. */
  constructor(options: JobsAgentOptions) {
    this.#options = options;
    this.#topics = new JobsTopics(options.thingName);
    this.#state = new JobStateStore(options.stateFile);
    this.#log = (options.logger ?? nullLogger).child({ module: 'jobs' });
  }

  /**
   * Subscribes to the thing's jobs topics and runs pending jobs until none is left, `signal`
   * aborts or a job cannot finish in this window. Resolves with what happened to each job; rejects
   * only when the subscriptions fail (the channel is broken).
   */
  async runWindow(signal: AbortSignal = new AbortController().signal): Promise<JobsWindowResult> {
    const client = new JobsClient({
      channel: this.#options.channel,
      topics: this.#topics,
      timeoutMs: this.#options.requestTimeoutMs ?? 30_000,
      log: this.#log,
    });
    const jobs: JobOutcome[] = [];
    await client.open(() => this.#log.debug('notify-next'));
    try {
      for (let n = 0; n < (this.#options.maxJobsPerWindow ?? 20); n++) {
        if (signal.aborted) return { jobs, interrupted: true };
        const execution = await client.startNext();
        if (!execution) return { jobs, interrupted: false };
        const outcome = await this.#runJob(client, execution, signal);
        jobs.push(outcome);
        if (outcome.status === 'IN_PROGRESS') return { jobs, interrupted: true };
      }
      return { jobs, interrupted: true };
    } catch (err) {
      this.#log.warn({ err }, 'jobs stopped for this window');
      return { jobs, interrupted: true };
    } finally {
      await client.close();
    }
  }

  async #runJob(client: JobsClient, execution: JobExecution, signal: AbortSignal): Promise<JobOutcome> {
    const started = performance.now();
    const { jobId, executionNumber } = execution;
    const log = this.#log.child({ jobId, executionNumber });
    const outcome = (
      status: JobOutcome['status'],
      details: Record<string, string>,
      alreadyApplied = false,
    ): JobOutcome => ({
      jobId,
      executionNumber,
      status,
      statusDetails: details,
      alreadyApplied,
      durationMs: Math.round(performance.now() - started),
    });
    const known = await this.#state.get(jobId, executionNumber);
    if (known?.phase === 'done' && known.status) {
      log.info({ status: known.status }, 'job already applied: reporting its status again');
      await this.#report(client, known, { status: known.status, details: known.details ?? {} });
      return outcome(known.status, known.details ?? {}, true);
    }
    const record = known ?? (await this.#state.put({ jobId, executionNumber, phase: 'started' }));
    const terminal = await this.#attempt(client, execution, record, signal, log);
    if (!terminal.status) return outcome('IN_PROGRESS', terminal.details);
    await this.#report(client, record, terminal as Terminal);
    return outcome(terminal.status, terminal.details);
  }

  /** Validates, obtains, verifies and applies; the terminal status, or none when interrupted. */
  async #attempt(
    client: JobsClient,
    execution: JobExecution,
    record: JobRecord,
    signal: AbortSignal,
    log: Logger,
  ): Promise<{ status?: Terminal['status']; details: Record<string, string> }> {
    const progress = (details: Record<string, string>) =>
      client.update(execution.jobId, execution.executionNumber, 'IN_PROGRESS', details);
    let step = 'validating';
    let received = 0;
    try {
      const document = this.#parse(execution.jobDocument);
      const manifest = verifyJobManifest(document, this.#options.publicKeyPem, {
        thingName: this.#options.thingName,
        thingGroups: this.#options.thingGroups ?? [],
        now: this.#options.now ?? Date.now,
      });
      const handler = this.#handler(document);
      if (document.operation === 'software-update') await this.#noDowngrade(document.version, manifest);
      step = 'downloading';
      await progress({ step });
      const content = await this.#options.artifacts.obtain(
        document.artifact,
        nameOf(document),
        signal,
        (n) => {
          received = n;
        },
      );
      step = 'applying';
      await this.#state.put({ ...record, phase: 'applying' });
      await progress({ step });
      const context: ApplyContext = {
        ...execution,
        document,
        content,
        resumed: record.phase === 'applying',
        signal,
        log,
      };
      const details = (await handler.apply(context as never)) ?? {};
      await this.#options.artifacts.discard(document.artifact);
      log.info('job applied');
      return { status: 'SUCCEEDED', details };
    } catch (err) {
      if (err instanceof JobStatusError) {
        log.warn({ err, status: err.status }, 'job not applied');
        return { status: err.status, details: { reason: err.reason } };
      }
      if (err instanceof JobsRequestRejectedError) throw err;
      log.warn({ err, step }, 'job interrupted: resumed in the next window');
      const reason = err instanceof GatewayError ? err.message : 'unexpected error';
      const held: Record<string, string> = step === 'downloading' ? { received: String(received) } : {};
      await progress({ step, ...held, interrupted: reason.slice(0, 200) }).catch(() => undefined);
      return { details: { step } };
    }
  }

  /** A release older than the running one is installed only when its signed manifest says rollback. */
  async #noDowngrade(version: string, manifest: JobManifest): Promise<void> {
    const running = await this.#options.runningVersion?.();
    if (running === undefined || manifest.rollback === true || compareVersions(version, running) >= 0) return;
    throw rejected(
      'ATTACHE_JOB_REFUSED',
      `downgrade refused: ${version} is older than the running ${running} and the signed manifest does not say rollback`,
    );
  }

  #parse(value: unknown): JobDocument {
    if ((value as { schemaVersion?: unknown } | null)?.schemaVersion === 1) {
      throw rejected(
        'ATTACHE_SIGNATURE',
        'unsigned job document: schemaVersion 1 signed only the artifact, not the operation, version, target or expiry; sign a schemaVersion 2 manifest',
      );
    }
    try {
      return parseJobDocument(value);
    } catch (err) {
      throw rejected('ATTACHE_MALFORMED', (err as Error).message, err);
    }
  }

  #handler(document: JobDocument): JobHandler {
    const handler = this.#options.handlers[document.operation] as JobHandler | undefined;
    if (!handler)
      throw rejected('ATTACHE_MALFORMED', `operation ${document.operation} is not enabled on this gateway`);
    return handler;
  }

  /** Persists the terminal status first (never applied twice), then reports it. */
  async #report(client: JobsClient, record: JobRecord, terminal: Terminal): Promise<void> {
    const done = { ...record, phase: 'done' as const, status: terminal.status, details: terminal.details };
    if (!record.reported) await this.#state.put(done);
    await client.update(record.jobId, record.executionNumber, terminal.status, terminal.details);
    await this.#state.put({ ...done, reported: true });
  }
}

function nameOf(document: JobDocument): string {
  switch (document.operation) {
    case 'file-delivery':
      return document.name;
    case 'software-update':
      return `release-${document.version}`;
    case 'config-update':
      return 'config.json';
  }
}
