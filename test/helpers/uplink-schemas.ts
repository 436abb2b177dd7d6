// The uplink's message schemas (packages/core/schema), compiled with ajv for assertions in tests.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const schemaDir = fileURLToPath(new URL('../../packages/core/schema/', import.meta.url));
const load = (name: string) => JSON.parse(readFileSync(`${schemaDir}${name}`, 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats.default(ajv, ['date-time']);
for (const name of ['record', 'batch', 'compressed-batch', 'event', 'state'])
  ajv.addSchema(load(`${name}.schema.json`));

/** The validation errors of `value` against `<name>.schema.json` (empty when valid). */
export function schemaErrors(name: string, value: unknown): string[] {
  const validate = ajv.getSchema(`https://attache.dev/schema/${name}.schema.json`);
  if (!validate) throw new Error(`no schema ${name}`);
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}
