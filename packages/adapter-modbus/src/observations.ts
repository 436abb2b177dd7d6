import type { CodedObservation } from '@attache/core';
import { type DecodedValue, decodeRegisters } from './decode.js';
import type { ReadResponse } from './modbus-client.js';
import type { PlannedValue, ReadBlock } from './plan.js';
import { registerPath } from './register-map.js';

/** What one read block gave: its response, or the error it failed with. */
export type BlockResult = { block: ReadBlock; response: ReadResponse } | { block: ReadBlock; error: Error };

/** The value of one planned register in its block's response; undefined when it cannot be decoded. */
function valueIn(value: PlannedValue, block: ReadBlock, response: ReadResponse): DecodedValue | undefined {
  const offset = value.at.address - block.address;
  if (value.register.type === 'bool') {
    const bit = response.bits[offset];
    return bit === undefined ? undefined : bit ? 1 : 0;
  }
  const bytes = response.bytes.subarray(offset * 2, (offset + value.at.count) * 2);
  if (bytes.length < value.at.count * 2) return undefined;
  const { type, order, bit, scale, offset: add } = value.register;
  return decodeRegisters(bytes, { type, order, bit, scale, offset: add });
}

function observation(value: PlannedValue, decoded: DecodedValue | undefined): CodedObservation {
  const { register, at } = value;
  const o: CodedObservation = {
    code: register.code,
    system: register.system,
    value: decoded ?? null,
    unit: register.unit,
    status: decoded === undefined || decoded === null ? 'unavailable' : 'valid',
    source: register.name,
    path: registerPath(register, at),
  };
  if (register.mdc !== undefined) o.mdc = register.mdc;
  return o;
}

/**
 * The observations of one poll, in register-map order: decoded values from answered blocks, `null`
 * and `unavailable` for values of failed blocks (and NaN/∞ floats). When an alarm word
 * (`questionableWhenNonZero`) reads non-zero, every other valid observation becomes `questionable`.
 */
export function buildObservations(results: readonly BlockResult[]): CodedObservation[] {
  const slots: { value: PlannedValue; decoded: DecodedValue | undefined }[] = [];
  for (const result of results) {
    for (const value of result.block.values) {
      const decoded = 'response' in result ? valueIn(value, result.block, result.response) : undefined;
      slots.push({ value, decoded });
    }
  }
  slots.sort((a, b) => a.value.index - b.value.index);
  const alarm = slots.some(
    (s) => s.value.register.questionableWhenNonZero && typeof s.decoded === 'number' && s.decoded !== 0,
  );
  return slots.map((s) => {
    const o = observation(s.value, s.decoded);
    if (alarm && o.status === 'valid' && !s.value.register.questionableWhenNonZero) o.status = 'questionable';
    return o;
  });
}
