import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFunction } from 'node:vm';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { type ConfigIssue, GatewayError } from './errors.js';
import type { BatchMessage } from './generated/batch.js';
import type { AttacheConfig } from './generated/config.js';
import type { AttacheRecord } from './generated/record.js';
import type {
  CompressedBatchMessage,
  GatewayEvent,
  GatewayStateMessage,
} from './generated/uplink-messages.js';

// Compiled from the schemas at build time (scripts/gen-types.mjs): no ajv compiler at run time.
// The config validator fills in defaults from the schema; the message validators change nothing.
// Each schema's validator is a CommonJS module of its own (packages/core/generated), required the
// first time it is called: V8 parses 0.4 MB for the config's alone, which `attache modbus read`
// never needs and `attache status` needs without the others (bench/README.md, "Command start");
// the config's is let go again after use ({@link releasable}).
// The shipped release puts the same files, bundled, where these URLs point from its chunks.
const requireHere = createRequire(import.meta.url);
const lazy = <T>(url: URL, name: string): (() => ValidateFunction<T>) => {
  let validator: ValidateFunction<T> | undefined;
  return () => {
    validator ??= (requireHere(fileURLToPath(url)) as Record<string, ValidateFunction<T>>)[
      name
    ] as ValidateFunction<T>;
    return validator;
  };
};
/**
 * Like {@link lazy}, for a validator a long-running process needs only now and then: the config's
 * (at start, at a reload, when the Device Shadow changes settings), 0.4 MB of source whose compiled
 * code an idle gateway would otherwise keep for good. Compiled outside require's cache and held
 * weakly, so that V8 may collect it once a validation is done (~0.5 MB of an idle gateway's RSS:
 * bench/README.md, "Idle RSS"); the next validation after that compiles it again (a few ms).
 */
const releasable = <T>(url: URL, name: string): (() => ValidateFunction<T>) => {
  let held: WeakRef<ValidateFunction<T>> | undefined;
  return () => {
    let validator = held?.deref();
    if (validator === undefined) {
      const path = fileURLToPath(url);
      const module = { exports: {} as Record<string, ValidateFunction<T>> };
      const parameters = ['exports', 'require', 'module', '__filename', '__dirname'];
      compileFunction(readFileSync(path, 'utf8'), parameters, { filename: path })(
        module.exports,
        createRequire(path),
        module,
        path,
        dirname(path),
      );
      validator = module.exports[name] as ValidateFunction<T>;
      held = new WeakRef(validator);
    }
    return validator;
  };
};
const configValidator = releasable<AttacheConfig>(
  new URL('../generated/config-validator.cjs', import.meta.url),
  'validateConfig',
);
const recordValidator = lazy<AttacheRecord>(
  new URL('../generated/record-validator.cjs', import.meta.url),
  'validateRecord',
);
const batchValidator = lazy<BatchMessage>(
  new URL('../generated/batch-validator.cjs', import.meta.url),
  'validateBatch',
);
const compressedBatchValidator = lazy<CompressedBatchMessage>(
  new URL('../generated/uplink-message-validators.cjs', import.meta.url),
  'validateCompressedBatch',
);
const eventValidator = lazy<GatewayEvent>(
  new URL('../generated/uplink-message-validators.cjs', import.meta.url),
  'validateEvent',
);
const stateValidator = lazy<GatewayStateMessage>(
  new URL('../generated/uplink-message-validators.cjs', import.meta.url),
  'validateState',
);

/** Problems of `value` against `validator`'s schema (empty when valid). */
function check(validator: ValidateFunction, value: unknown): ConfigIssue[] {
  return validator(value) ? [] : issuesOf(validator.errors);
}

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
  const validator = configValidator();
  if (!validator(copy)) {
    const issues = issuesOf(validator.errors);
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `config is invalid (${issues.length} problems)`, {
      issues,
    });
  }
  return copy;
}

/** Problems of a record against record.schema.json (empty when valid). */
export function checkRecord(value: unknown): ConfigIssue[] {
  return check(recordValidator(), value);
}

/** Problems of a batch message against batch.schema.json (empty when valid). */
export function checkBatch(value: unknown): ConfigIssue[] {
  return check(batchValidator(), value);
}

/** Problems of a gzip batch message against compressed-batch.schema.json (empty when valid). */
export function checkCompressedBatch(value: unknown): ConfigIssue[] {
  return check(compressedBatchValidator(), value);
}

/** Problems of an event message against event.schema.json (empty when valid). */
export function checkEvent(value: unknown): ConfigIssue[] {
  return check(eventValidator(), value);
}

/** Problems of a state message against state.schema.json (empty when valid). */
export function checkState(value: unknown): ConfigIssue[] {
  return check(stateValidator(), value);
}
