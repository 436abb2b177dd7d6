import type { CodedObservation } from '@attache/core';

/** Where a MEDIBUS code maps: an MDC quantity with its UCUM unit. */
export interface MedibusCode {
  /** ISO/IEEE 11073-10101 reference id. */
  refId: string;
  /** MDC numeric code (partition × 65536 + term). */
  mdc: number;
  /** UCUM unit of the value as the device sends it (no conversion is made). */
  unit: string;
  /** The device's own name for the value, for troubleshooting. */
  name: string;
}

/**
 * Measured data, code page 1: the codes and units of the MEDIBUS command set as the open-source
 * VSCaptureDrgVent client lists them, to the MDC terms of ISO/IEEE 11073-10101 (numbers checked
 * against the partition × 65536 + term arithmetic). Pressures stay in mbar, as the device sends them.
 */
export const MEASUREMENTS_CP1: ReadonlyMap<number, MedibusCode> = new Map([
  [0x7d, { refId: 'MDC_PRESS_AWAY_INSP_PEAK', mdc: 151817, unit: 'mbar', name: 'peak pressure' }],
  [0x73, { refId: 'MDC_PRESS_AWAY_INSP_MEAN', mdc: 151819, unit: 'mbar', name: 'mean pressure' }],
  [0x78, { refId: 'MDC_PRESS_AWAY_END_EXP_POS', mdc: 151976, unit: 'mbar', name: 'PEEP' }],
  [0x88, { refId: 'MDC_VOL_AWAY_TIDAL', mdc: 151868, unit: 'mL', name: 'tidal volume' }],
  [0xb8, { refId: 'MDC_VOL_MINUTE_AWAY', mdc: 151880, unit: 'L/min', name: 'minute volume' }],
  [0xd6, { refId: 'MDC_RESP_RATE', mdc: 151562, unit: '/min', name: 'respiratory rate' }],
  [0xf0, { refId: 'MDC_CONC_AWAY_O2_INSP', mdc: 152196, unit: '%', name: 'inspiratory O2' }],
]);

/** Two uppercase hex digits, as the device writes codes. */
export function hexCode(code: number): string {
  return code.toString(16).toUpperCase().padStart(2, '0');
}

/** A MEDIBUS value: a decimal number, or null (blank, dashes, anything else: no value sent). */
export function medibusValue(text: string): number | null {
  const trimmed = text.trim();
  return /^-?(\d+\.?\d*|\.\d+)$/.test(trimmed) ? Number(trimmed) : null;
}

/**
 * One measured value as an observation: through the table when the code is known, else kept as the
 * device's code (`LOCAL`, code `CP1:7E`) with no unit the gateway could vouch for.
 */
export function measurement(page: 1 | 2, code: number, text: string): CodedObservation {
  const value = medibusValue(text);
  const status = value === null ? 'unavailable' : 'valid';
  const deviceCode = { code: `CP${page}:${hexCode(code)}`, system: 'MEDIBUS' };
  const known = page === 1 ? MEASUREMENTS_CP1.get(code) : undefined;
  if (known === undefined) {
    return { code: deviceCode.code, system: 'LOCAL', value, unit: '', status, source: deviceCode.code };
  }
  return {
    code: known.refId,
    system: 'MDC',
    mdc: known.mdc,
    value,
    unit: known.unit,
    status,
    source: known.name,
    deviceCode,
  };
}
