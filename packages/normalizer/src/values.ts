import type { FieldMapping, Observation } from '@attache/core';
import { GatewayError, parseDecimal } from '@attache/core';

/** A device value after mapping: the observation's `value` and `status`. */
export interface MappedValue {
  value: Observation['value'];
  status: Observation['status'];
}

/** A device's "no value": only dashes, dots and plus signs (`---`, `--.-`, `+--`). */
const noValue = /^[-.+]+$/;
const hex = /^[0-9A-Fa-f]+$/;

const unavailable: MappedValue = { value: null, status: 'unavailable' };

/**
 * Maps one device value by its field's `type`. Throws a GatewayError `ATTACHE_MALFORMED` naming
 * `what` (never the value) when a `number` is not a decimal or a `hex` is not hex.
 */
export function mapValue(raw: string, type: FieldMapping['type'], what: string): MappedValue {
  switch (type) {
    case 'number': {
      const text = withoutUnitSuffix(raw);
      if (noValue.test(text)) return unavailable;
      const value = parseDecimal(text);
      if (value === undefined) throw new GatewayError('ATTACHE_MALFORMED', `${what} is not a number`);
      return { value, status: 'valid' };
    }
    case 'hex':
      if (noValue.test(raw)) return unavailable;
      if (!hex.test(raw)) throw new GatewayError('ATTACHE_MALFORMED', `${what} is not hex`);
      return { value: raw, status: 'valid' };
    case 'text':
      return { value: raw, status: 'valid' };
  }
}

/**
 * `raw` without the unit suffix the device appends (`%`, `bpm`, `C`): its trailing letters and `%`.
 * A scan from the end, as the search `/[%A-Za-z]+$/` would retry from every letter of a long run
 * of letters followed by a digit (quadratic).
 */
function withoutUnitSuffix(raw: string): string {
  let end = raw.length;
  while (end > 0 && isUnitChar(raw.charCodeAt(end - 1))) end--;
  return raw.slice(0, end);
}

function isUnitChar(code: number): boolean {
  return code === 0x25 || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** True for a status word with a value other than zero (`0001`, 4); false for zero or no value. */
export function isNonZero(value: Observation['value']): boolean {
  if (typeof value === 'number') return value !== 0;
  return typeof value === 'string' && /[^0]/.test(value);
}

/** A status word's bits: a hex word as sent (`0820`), or a whole number; undefined for anything else. */
function bitsOf(value: Observation['value']): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined;
  return typeof value === 'string' && hex.test(value) ? BigInt(`0x${value}`) : undefined;
}

/**
 * True when a status word marks the other values questionable: any bit of `mask` (hex, `0x` optional)
 * set, or without a mask any bit set. A value without bits (no value, not a whole number) is false.
 */
export function hasQuestionableBits(value: Observation['value'], mask: string | undefined): boolean {
  if (mask === undefined) return isNonZero(value);
  const bits = bitsOf(value);
  return bits !== undefined && (bits & BigInt(/^0[xX]/.test(mask) ? mask : `0x${mask}`)) !== 0n;
}
