import { GatewayError } from '@attache/core';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { JobArtifact, JobDocument } from './generated/job-document.js';
import { validateJobDocument as validatorCode } from './generated/job-document-validator.js';

// Compiled from packages/core/schema/job-document.schema.json at build time (scripts/gen-types.mjs).
const validator = validatorCode as ValidateFunction<JobDocument>;

function describe(e: ErrorObject): string {
  const path = e.instancePath || '/';
  if (e.keyword === 'required') return `${e.instancePath}/${String(e.params.missingProperty)} is required`;
  if (e.keyword === 'additionalProperties') {
    return `${e.instancePath}/${String(e.params.additionalProperty)} is not allowed`;
  }
  return `${path} ${e.message ?? 'is invalid'}`;
}

/**
 * Checks a job document against the job document schema and returns it typed. Throws GatewayError
 * `ATTACHE_MALFORMED` naming every problem (a document without a signature, of an unknown
 * `schemaVersion` or `operation` included). An artifact with both `url` and `content` is refused.
 */
export function parseJobDocument(value: unknown): JobDocument {
  if (validator(value)) return value;
  const problems = [...new Set((validator.errors ?? []).map(describe))];
  throw new GatewayError('ATTACHE_MALFORMED', `invalid job document: ${problems.join('; ')}`);
}

export type { JobArtifact, JobDocument };
