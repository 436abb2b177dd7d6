import type { CodedObservation } from '@attache/core';
import { type DecodedValue, decodeRegisters } from './decode.js';
import type { ReadResponse } from './modbus-client.js';
import type { PlannedValue, ReadBlock } from './plan.js';
import { registerPath } from './register-map.js';

/** What one read block gave: its response, or the error it failed with. */
export type BlockResult = { block: ReadBlock; response: ReadResponse } | { block: ReadBlock; error: Error };

/** Called for a value whose scale and offset made it non-finite; the value is marked unavailable. */
export type OutOfRangeHandler = (value: PlannedValue) => void;

/** The value of one planned register in its block's response; undefined when it cannot be decoded. */
function valueIn(
  value: PlannedValue,
  block: ReadBlock,
  response: ReadResponse,
  onOutOfRange: OutOfRangeHandler,
): DecodedValue | undefined {
  const offset = value.at.address - block.address;
  if (value.register.type === 'bool') {
    const bit = response.bits[offset];
    return bit === undefined ? undefined : bit ? 1 : 0;
  }
  const bytes = response.bytes.subarray(offset * 2, (offset + value.at.count) * 2);
  if (bytes.length < value.at.count * 2) return undefined;
  const { type, order, bit, scale, offset: add } = value.register;
  try {
    return decodeRegisters(bytes, { type, order, bit, scale, offset: add });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    onOutOfRange(value);
    return undefined;
  }
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
 * and `unavailable` for values of failed blocks (and NaN/∞ floats). A value that its scale and offset
 * make non-finite is `unavailable` too, and reported to `onOutOfRange`: the other values of the poll
 * are kept. When an alarm word (`questionableWhenNonZero`) reads non-zero, every other valid
 * observation becomes `questionable`.
 */
export function buildObservations(
  results: readonly BlockResult[],
  onOutOfRange: OutOfRangeHandler = () => {},
): CodedObservation[] {
  const slots: { value: PlannedValue; decoded: DecodedValue | undefined }[] = [];
  for (const result of results) {
    for (const value of result.block.values) {
      const decoded =
        'response' in result ? valueIn(value, result.block, result.response, onOutOfRange) : undefined;
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
