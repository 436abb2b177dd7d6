import type { Logger } from '@attache/core';
import type {
  ConfigUpdateJob,
  FileDeliveryJob,
  JobDocument,
  SoftwareUpdateJob,
} from './generated/job-document.js';

/** What a handler gets to apply one job: the document and its proven artifact. */
export interface ApplyContext<D extends JobDocument = JobDocument> {
  jobId: string;
  executionNumber: number;
  document: D;
  /** The artifact's bytes: size, SHA-256 and signature already verified. */
  content: Buffer;
  /** True when an earlier apply of this execution was interrupted (crash, window end): finish it. */
  resumed: boolean;
  /** Aborted when the window ends. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * Applies one kind of job. `apply` must be safe to run again after an interruption at any point
 * (`resumed`). Resolves with statusDetails for SUCCEEDED (string values); rejects JobStatusError
 * for FAILED (rolled back) or REJECTED (nothing applied); any other rejection leaves the job
 * IN_PROGRESS, retried in the next window.
 */
export interface JobHandler<D extends JobDocument = JobDocument> {
  apply(context: ApplyContext<D>): Promise<Record<string, string> | undefined>;
}

/** The handler of each operation the gateway accepts; an operation without one is REJECTED. */
export interface JobHandlers {
  'config-update'?: JobHandler<ConfigUpdateJob>;
  'file-delivery'?: JobHandler<FileDeliveryJob>;
  'software-update'?: JobHandler<SoftwareUpdateJob>;
}
