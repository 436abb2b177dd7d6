import type { ErrorObject, ValidateFunction } from 'ajv';
import { type ConfigIssue, GatewayError } from './errors.js';
import type { BatchMessage } from './generated/batch.js';
import type { AttacheConfig } from './generated/config.js';
import { validateConfig as configValidatorCode } from './generated/config-validator.js';
import {
  validateBatch as batchValidatorCode,
  validateRecord as recordValidatorCode,
} from './generated/message-validators.js';
import type { AttacheRecord } from './generated/record.js';
import {
  validateCompressedBatch as compressedBatchValidatorCode,
  validateEvent as eventValidatorCode,
  validateState as stateValidatorCode,
} from './generated/uplink-message-validators.js';
import type {
  CompressedBatchMessage,
  GatewayEvent,
  GatewayStateMessage,
} from './generated/uplink-messages.js';

// Compiled from the schemas at build time (scripts/gen-types.mjs): no ajv compiler at run time.
// The config validator fills in defaults from the schema; the message validators change nothing.
const configValidator = configValidatorCode as ValidateFunction<AttacheConfig>;
const recordValidator = recordValidatorCode as ValidateFunction<AttacheRecord>;
const batchValidator = batchValidatorCode as ValidateFunction<BatchMessage>;
const compressedBatchValidator = compressedBatchValidatorCode as ValidateFunction<CompressedBatchMessage>;
const eventValidator = eventValidatorCode as ValidateFunction<GatewayEvent>;
const stateValidator = stateValidatorCode as ValidateFunction<GatewayStateMessage>;

function describe(e: ErrorObject): ConfigIssue {
  const path = e.instancePath || '/';
  switch (e.keyword) {
    case 'required':
      return { path: `${e.instancePath}/${String(e.params.missingProperty)}`, message: 'is required' };
    case 'additionalProperties':
      return {
        path: `${e.instancePath}/${String(e.params.additionalProperty)}`,
        message: 'is not a known setting',
      };
    case 'enum':
      return {
        path,
        message: `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'const':
      return { path, message: `must be ${JSON.stringify(e.params.allowedValue)}` };
    default:
      return { path, message: e.message ?? 'is invalid' };
  }
}

function issuesOf(errors: ErrorObject[] | null | undefined): ConfigIssue[] {
  const seen = new Set<string>();
  const out: ConfigIssue[] = [];
  for (const issue of (errors ?? []).map(describe)) {
    const key = `${issue.path} ${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(issue);
    }
  }
  return out;
}

/**
 * Validates a parsed config file against the schema and fills in its defaults.
 * Returns a new object; throws a GatewayError `ATTACHE_CONFIG_INVALID` whose `issues` list every
 * problem (path + message) when the config is invalid.
 */
export function validateConfig(input: unknown): AttacheConfig {
  const copy: unknown = structuredClone(input);
  if (!configValidator(copy)) {
    const issues = issuesOf(configValidator.errors);
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `config is invalid (${issues.length} problems)`, {
      issues,
    });
  }
  return copy;
}

/** Problems of a record against record.schema.json (empty when valid). */
export function checkRecord(value: unknown): ConfigIssue[] {
  return recordValidator(value) ? [] : issuesOf(recordValidator.errors);
}

/** Problems of a batch message against batch.schema.json (empty when valid). */
export function checkBatch(value: unknown): ConfigIssue[] {
  return batchValidator(value) ? [] : issuesOf(batchValidator.errors);
}

/** Problems of a gzip batch message against compressed-batch.schema.json (empty when valid). */
export function checkCompressedBatch(value: unknown): ConfigIssue[] {
  return compressedBatchValidator(value) ? [] : issuesOf(compressedBatchValidator.errors);
}

/** Problems of an event message against event.schema.json (empty when valid). */
export function checkEvent(value: unknown): ConfigIssue[] {
  return eventValidator(value) ? [] : issuesOf(eventValidator.errors);
}

/** Problems of a state message against state.schema.json (empty when valid). */
export function checkState(value: unknown): ConfigIssue[] {
  return stateValidator(value) ? [] : issuesOf(stateValidator.errors);
}
