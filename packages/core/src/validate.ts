import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { type ConfigIssue, GatewayError } from './errors.js';
import type { BatchMessage } from './generated/batch.js';
import type { AttacheConfig } from './generated/config.js';
import type { AttacheRecord } from './generated/record.js';

function schema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`../schema/${name}`, import.meta.url), 'utf8'));
}

/** The JSON Schemas shipped in this package, for consumers that validate messages themselves. */
export const schemas = {
  config: schema('config.schema.json'),
  record: schema('record.schema.json'),
  batch: schema('batch.schema.json'),
} as const;

// Two instances: config validation fills in defaults from the schema, message validation must not change data.
const configAjv = new Ajv2020({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true });
const messageAjv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
for (const ajv of [configAjv, messageAjv]) formats.default(ajv, ['date-time']);
messageAjv.addSchema(schemas.record).addSchema(schemas.batch);

const configValidator = configAjv.compile<AttacheConfig>(schemas.config);
const recordValidator = messageAjv.getSchema<AttacheRecord>(
  String(schemas.record.$id),
) as ValidateFunction<AttacheRecord>;
const batchValidator = messageAjv.getSchema<BatchMessage>(
  String(schemas.batch.$id),
) as ValidateFunction<BatchMessage>;

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
