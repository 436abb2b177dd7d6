import type { AlarmDraft } from '@attache/core';

/**
 * Parameter labels monitors print in alarm texts (Philips IntelliVue, GE), to their MDC code and
 * MDC unit (ISO/IEEE 11073-10101; Philips MDIL). Compared in upper case.
 */
const labels: Record<string, readonly [string, number, string]> = {
  SPO2: ['MDC_PULS_OXIM_SAT_O2', 150456, '262688'],
  HR: ['MDC_ECG_HEART_RATE', 147842, '264864'],
  PULSE: ['MDC_PULS_OXIM_PULS_RATE', 149530, '264864'],
  PVC: ['MDC_ECG_V_P_C_RATE', 148066, '264864'],
  RR: ['MDC_RESP_RATE', 151562, '264928'],
  RESP: ['MDC_RESP_RATE', 151562, '264928'],
  NBPS: ['MDC_PRESS_BLD_NONINV_SYS', 150021, '266016'],
  NBPD: ['MDC_PRESS_BLD_NONINV_DIA', 150022, '266016'],
  NBPM: ['MDC_PRESS_BLD_NONINV_MEAN', 150023, '266016'],
  ABPS: ['MDC_PRESS_BLD_ART_SYS', 150033, '266016'],
  ABPD: ['MDC_PRESS_BLD_ART_DIA', 150034, '266016'],
  ABPM: ['MDC_PRESS_BLD_ART_MEAN', 150035, '266016'],
  TEMP: ['MDC_TEMP', 150344, '268192'],
};

/** Philips marks alarm priority with asterisks: `***` red (high), `**` yellow (medium), `*` short yellow (low). */
const stars: Record<number, NonNullable<AlarmDraft['priority']>> = { 3: 'high', 2: 'medium', 1: 'low' };

function number(text: string | undefined): number | undefined {
  if (text === undefined || text === '' || !/^[-+]?\d{1,7}(\.\d{1,4})?$/.test(text)) return undefined;
  return Number(text);
}

/**
 * What a vendor's short alarm text says in a fixed shape: `***SpO2 LOW 88 < 90` gives priority
 * high, direction low, limit low 90, and SpO2 = 88 as the parameter (only for a label listed
 * above, so no free text becomes a code). Linear: one split on white space, no backtracking.
 */
export function vendorAlarmText(text: string): Partial<AlarmDraft> {
  let start = 0;
  while (start < text.length && text[start] === '*') start++;
  const found: Partial<AlarmDraft> = {};
  const priority = stars[Math.min(start, 3)];
  if (priority !== undefined) found.priority = priority;
  const tokens = text
    .slice(start, start + 256)
    .split('<')
    .join(' < ')
    .split('>')
    .join(' > ')
    .split(/\s+/)
    .filter((t) => t !== '');
  for (const [i, token] of tokens.entries()) {
    const upper = token.toUpperCase();
    if (upper === 'HIGH' || upper === 'HI') found.direction = 'high';
    if (upper === 'LOW' || upper === 'LO') found.direction = 'low';
    if (token !== '<' && token !== '>') continue;
    const value = number(tokens[i - 1]);
    const limit = number(tokens[i + 1]);
    if (value === undefined || limit === undefined) continue;
    found.direction = token === '<' ? 'low' : 'high';
    found.limits = token === '<' ? { low: limit } : { high: limit };
    const label = labels[(tokens[0] ?? '').toUpperCase()];
    if (label !== undefined) {
      const [code, mdc, unit] = label;
      found.parameter = {
        code,
        system: 'MDC',
        mdc,
        value,
        unit,
        status: 'valid',
        source: tokens[0] as string,
      };
    }
    break;
  }
  return found;
}
