/** Names of the codes bedside devices send most, for a technician who does not read MDC ids. */
const names: ReadonlyMap<string, string> = new Map([
  ['MDC_PULS_OXIM_SAT_O2', 'SpO₂'],
  ['MDC_PULS_OXIM_PULS_RATE', 'Pulse rate (oximeter)'],
  ['MDC_ECG_HEART_RATE', 'Heart rate (ECG)'],
  ['MDC_PULS_RATE_NON_INV', 'Pulse rate (NIBP)'],
  ['MDC_PRESS_BLD_NONINV_SYS', 'NIBP systolic'],
  ['MDC_PRESS_BLD_NONINV_DIA', 'NIBP diastolic'],
  ['MDC_PRESS_BLD_NONINV_MEAN', 'NIBP mean'],
  ['MDC_PRESS_BLD_ART_SYS', 'Arterial systolic'],
  ['MDC_PRESS_BLD_ART_DIA', 'Arterial diastolic'],
  ['MDC_PRESS_BLD_ART_MEAN', 'Arterial mean'],
  ['MDC_RESP_RATE', 'Respiration rate'],
  ['MDC_TEMP', 'Temperature'],
  ['MDC_TEMP_BODY', 'Body temperature'],
]);

/** The name of `code` in words, or the code itself when it has none here. */
export function codeName(code: string): string {
  return names.get(code) ?? code;
}
