/**
 * MDC (ISO/IEEE 11073-10101) reference ids by their context-free code (partition × 65536 + term),
 * for the quantities bedside devices commonly send. The numbers are checked by that arithmetic
 * against the 11073-20601 nomenclature header (partition 2 SCADA, 4 DIM) and the GE B40 and Philips
 * MDIL documentation; a code missing here keeps its decimal form (its `mdc` is the same either way).
 */
const terms: ReadonlyMap<number, string> = new Map([
  [147842, 'MDC_ECG_HEART_RATE'],
  [148066, 'MDC_ECG_V_P_C_RATE'],
  [150456, 'MDC_PULS_OXIM_SAT_O2'],
  [149530, 'MDC_PULS_OXIM_PULS_RATE'],
  [149546, 'MDC_PULS_RATE_NON_INV'],
  [149522, 'MDC_BLD_PULS_RATE_INV'],
  [150021, 'MDC_PRESS_BLD_NONINV_SYS'],
  [150022, 'MDC_PRESS_BLD_NONINV_DIA'],
  [150023, 'MDC_PRESS_BLD_NONINV_MEAN'],
  [150033, 'MDC_PRESS_BLD_ART_SYS'],
  [150034, 'MDC_PRESS_BLD_ART_DIA'],
  [150035, 'MDC_PRESS_BLD_ART_MEAN'],
  [151562, 'MDC_RESP_RATE'],
  [150344, 'MDC_TEMP'],
  [150364, 'MDC_TEMP_BODY'],
  [69965, 'MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS'],
  [69854, 'MDC_DEV_METER_PRESS_BLD_VMD'],
  [69855, 'MDC_DEV_METER_PRESS_BLD_CHAN'],
]);

/** The reference id of an MDC code, or undefined when this table does not hold it. */
export function mdcReferenceId(mdc: number): string | undefined {
  return terms.get(mdc);
}
