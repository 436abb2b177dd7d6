/**
 * Device unit spellings to UCUM. Keys are compared after trimming; MDC unit codes may come as the
 * reference id (`MDC_DIM_PERCENT`) or the context-free number (`262688` = partition 4 × 65536 + term). Lab spellings are those analyzers print (`10^3/uL`, `K/uL`).
 */
const table: Record<string, string> = {
  MDC_DIM_PERCENT: '%',
  '262688': '%',
  MDC_DIM_BEAT_PER_MIN: '/min',
  '264864': '/min',
  MDC_DIM_RESP_PER_MIN: '/min',
  '264928': '/min',
  MDC_DIM_MMHG: 'mm[Hg]',
  '266016': 'mm[Hg]',
  MDC_DIM_KILO_PASCAL: 'kPa',
  '265987': 'kPa',
  MDC_DIM_DEGC: 'Cel',
  '268192': 'Cel',
  MDC_DIM_KILO_G: 'kg',
  '263875': 'kg',
  MDC_DIM_CENTI_M: 'cm',
  '263441': 'cm',
  MDC_DIM_DIMLESS: '1',
  '262656': '1',
  '': '1',
  mmHg: 'mm[Hg]',
  'mm Hg': 'mm[Hg]',
  cmH2O: 'cm[H2O]',
  bpm: '/min',
  'beats/min': '/min',
  'breaths/min': '/min',
  rpm: '/min',
  '°C': 'Cel',
  degC: 'Cel',
  C: 'Cel',
  '°F': '[degF]',
  degF: '[degF]',
  '10^3/uL': '10*3/uL',
  '10^3/µL': '10*3/uL',
  '10E3/uL': '10*3/uL',
  'x10^3/uL': '10*3/uL',
  'K/uL': '10*3/uL',
  '10^6/uL': '10*6/uL',
  '10^6/µL': '10*6/uL',
  '10E6/uL': '10*6/uL',
  'x10^6/uL': '10*6/uL',
  'M/uL': '10*6/uL',
  '10^9/L': '10*9/L',
  '10^12/L': '10*12/L',
  µL: 'uL',
  'g/dl': 'g/dL',
  'mg/dl': 'mg/dL',
  'mmol/l': 'mmol/L',
  'umol/l': 'umol/L',
  'µmol/L': 'umol/L',
  'U/l': 'U/L',
  'IU/L': '[IU]/L',
  'mEq/L': 'meq/L',
  fl: 'fL',
  sec: 's',
  secs: 's',
};

/**
 * The UCUM spelling of a device unit: first the device's own `units` map from config, then the
 * built-in table; a unit found in neither is returned as sent (most devices already send UCUM, e.g.
 * `%`, `g/dL`, `fL`), so nothing is lost.
 */
export function toUcum(unit: string, deviceUnits: Record<string, string> = {}): string {
  const key = unit.trim();
  if (Object.hasOwn(deviceUnits, key)) return deviceUnits[key] as string;
  if (Object.hasOwn(table, key)) return table[key] as string;
  return key;
}
