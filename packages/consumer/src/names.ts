import type { Observation } from './generated/batch.js';

/** An MDC term (ISO/IEEE 11073-10101): its reference id, context-free number and a display name. */
export interface MdcTerm {
  referenceId: string;
  /** Partition × 65536 + term code. */
  code: number;
  displayName: string;
}

// The terms the gateway's adapters, profiles and examples emit (HL7 OBX-3 from monitors, the
// normalizer's mappings), with numbers checked against the partition/term arithmetic.
const terms: MdcTerm[] = [
  { referenceId: 'MDC_ECG_HEART_RATE', code: 147842, displayName: 'Heart rate (ECG)' },
  { referenceId: 'MDC_ECG_V_P_C_RATE', code: 148066, displayName: 'PVC rate' },
  { referenceId: 'MDC_PULS_OXIM_SAT_O2', code: 150456, displayName: 'SpO₂' },
  { referenceId: 'MDC_PULS_OXIM_PULS_RATE', code: 149530, displayName: 'Pulse rate (oximeter)' },
  { referenceId: 'MDC_PULS_RATE_NON_INV', code: 149546, displayName: 'Pulse rate (NIBP)' },
  { referenceId: 'MDC_BLD_PULS_RATE_INV', code: 149522, displayName: 'Pulse rate (invasive BP)' },
  { referenceId: 'MDC_PRESS_BLD_NONINV_SYS', code: 150021, displayName: 'NIBP systolic' },
  { referenceId: 'MDC_PRESS_BLD_NONINV_DIA', code: 150022, displayName: 'NIBP diastolic' },
  { referenceId: 'MDC_PRESS_BLD_NONINV_MEAN', code: 150023, displayName: 'NIBP mean' },
  { referenceId: 'MDC_PRESS_BLD_ART_SYS', code: 150033, displayName: 'Arterial BP systolic' },
  { referenceId: 'MDC_PRESS_BLD_ART_DIA', code: 150034, displayName: 'Arterial BP diastolic' },
  { referenceId: 'MDC_PRESS_BLD_ART_MEAN', code: 150035, displayName: 'Arterial BP mean' },
  { referenceId: 'MDC_RESP_RATE', code: 151562, displayName: 'Respiration rate' },
  { referenceId: 'MDC_TEMP', code: 150344, displayName: 'Temperature' },
  { referenceId: 'MDC_TEMP_BODY', code: 150364, displayName: 'Body temperature' },
  { referenceId: 'MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS', code: 69965, displayName: 'Multi-parameter monitor' },
  { referenceId: 'MDC_DEV_METER_PRESS_BLD_VMD', code: 69854, displayName: 'Blood pressure meter' },
  { referenceId: 'MDC_DEV_METER_PRESS_BLD_CHAN', code: 69855, displayName: 'Blood pressure channel' },
];
const byId = new Map(terms.map((t) => [t.referenceId, t]));
const byCode = new Map(terms.map((t) => [t.code, t]));

// UCUM codes (what the gateway sends in `unit`) to how a dashboard shows them.
const units: Record<string, string> = {
  '%': '%',
  '/min': '/min',
  'mm[Hg]': 'mmHg',
  'cm[H2O]': 'cmH₂O',
  kPa: 'kPa',
  Cel: '°C',
  '[degF]': '°F',
  kg: 'kg',
  cm: 'cm',
  '1': '',
  '10*3/uL': '10³/µL',
  '10*6/uL': '10⁶/µL',
  '10*9/L': '10⁹/L',
  '10*12/L': '10¹²/L',
  uL: 'µL',
  'g/dL': 'g/dL',
  'mg/dL': 'mg/dL',
  'mmol/L': 'mmol/L',
  'umol/L': 'µmol/L',
  'U/L': 'U/L',
  '[IU]/L': 'IU/L',
  'meq/L': 'mEq/L',
  fL: 'fL',
  s: 's',
};

/** The MDC term for a reference id (`MDC_PULS_OXIM_SAT_O2`) or number (150456); undefined when not known. */
export function mdcTerm(idOrCode: string | number): MdcTerm | undefined {
  return typeof idOrCode === 'number' ? byCode.get(idOrCode) : byId.get(idOrCode);
}

/** How to show a UCUM unit (`mm[Hg]` → `mmHg`, `Cel` → `°C`, `1` → empty); an unknown unit is shown as sent. */
export function displayUnit(ucum: string): string {
  return Object.hasOwn(units, ucum) ? (units[ucum] as string) : ucum;
}

/** An observation with what a dashboard shows beside it. */
export interface NamedObservation extends Observation {
  /** The MDC reference id (from `code` or the numeric `mdc`), when the observation is MDC-coded and known. */
  referenceId?: string;
  /** A display name: the MDC term's, else the device's own field name (`source`), else `code`. */
  displayName: string;
  displayUnit: string;
}

/** Adds the reference id, display name and display unit to an observation. */
export function nameObservation(o: Observation): NamedObservation {
  const term =
    o.system === 'MDC' ? (mdcTerm(o.code) ?? (o.mdc === undefined ? undefined : mdcTerm(o.mdc))) : undefined;
  return {
    ...o,
    ...(term ? { referenceId: term.referenceId } : {}),
    displayName: term?.displayName ?? o.source ?? o.code,
    // A unit the device sent that is not UCUM: `unit` is null and the device's spelling is kept.
    displayUnit: o.unit === null ? (o.deviceUnit ?? '') : displayUnit(o.unit),
  };
}
