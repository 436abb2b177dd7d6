// The uplink's message schemas, through the validators @attache/core generates from them.
import { checkBatch, checkCompressedBatch, checkEvent, checkRecord, checkState } from '@attache/core';

const checks: Record<string, (value: unknown) => { path: string; message: string }[]> = {
  record: checkRecord,
  batch: checkBatch,
  'compressed-batch': checkCompressedBatch,
  event: checkEvent,
  state: checkState,
};

/** The validation errors of `value` against `<name>.schema.json` (empty when valid). */
export function schemaErrors(name: string, value: unknown): string[] {
  const check = checks[name];
  if (!check) throw new Error(`no schema ${name}`);
  return check(value).map((issue) => `${issue.path} ${issue.message}`);
}
