import { type ErrorCode, GatewayError } from '@attache/core';

/** The terminal status a failed job is reported with. */
export type FailedJobStatus = 'FAILED' | 'REJECTED';

/**
 * A job that cannot succeed: reported to AWS IoT Jobs with `status` and `reason` (in
 * `statusDetails.reason`). REJECTED: the job was refused and nothing was applied (invalid document,
 * unsigned, wrong hash or size). FAILED: applying it failed and was rolled back.
 */
export class JobStatusError extends GatewayError {
  readonly status: FailedJobStatus;
  /** The reason reported to the cloud: never patient data, at most 1,000 characters. */
  readonly reason: string;

  /** `reason` is cut to 1,000 characters; `code` classifies the cause like any GatewayError. */
  constructor(status: FailedJobStatus, code: ErrorCode, reason: string, options: { cause?: unknown } = {}) {
    super(code, reason, options);
    this.status = status;
    this.reason = reason.slice(0, 1000);
  }
}

/** A REJECTED job: nothing was applied. */
export function rejected(code: ErrorCode, reason: string, cause?: unknown): JobStatusError {
  return new JobStatusError('REJECTED', code, reason, { cause });
}

/** A FAILED job: applying it failed and what it changed was rolled back. */
export function failed(code: ErrorCode, reason: string, cause?: unknown): JobStatusError {
  return new JobStatusError('FAILED', code, reason, { cause });
}
