import type { CodedObservation } from '@attache/core';
import { GatewayError, parseDecimal } from '@attache/core';
import type { Hl7Segment } from './hl7-parser.js';

/** An OBX that could not be read, with where (for the ERR segment). */
export interface ObxProblem {
  hl7Code: 102;
  location: string;
}

/** Philips MDIL code, `pppp-tttt` in hex (ISO/IEEE 11073-10101; Philips MDIL). */
const mdil = /^([0-9a-fA-F]{4})-([0-9a-fA-F]{4})$/;
/**
 * Free-text types: may name a patient or a clinician (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)). Marked `freeText`, so the
 * normalizer keeps them only when the device's config turns free text on, and de-identifies them.
 */
const freeText = new Set(['TX', 'FT', 'ST']);
const coded = new Set(['CWE', 'CE', 'CNE', 'CF']);

/** OBX-11 (HL7 table 0085) to the record's status; unknown codes are `questionable`. */
const statuses: Record<string, CodedObservation['status']> = {
  '': 'valid',
  F: 'valid',
  C: 'valid',
  R: 'valid',
  U: 'valid',
  A: 'valid',
  B: 'valid',
  P: 'questionable',
  S: 'questionable',
  W: 'questionable',
  X: 'unavailable',
  N: 'unavailable',
  I: 'unavailable',
  O: 'unavailable',
  D: 'unavailable',
};

/** The MDC numeric code of an MDIL `pppp-tttt` code: partition × 65536 + term. */
export function mdilToMdc(code: string): number | undefined {
  const match = mdil.exec(code);
  return match
    ? Number.parseInt(match[1] as string, 16) * 65536 + Number.parseInt(match[2] as string, 16)
    : undefined;
}

function mdcNumber(text: string): number | undefined {
  if (/^\d{1,10}$/.test(text)) return Number(text);
  return mdilToMdc(text);
}

/** What OBX-3 gives an observation: its code, system, MDC number, source and the device's own code. */
export type ObxCode = Pick<CodedObservation, 'code' | 'system' | 'mdc' | 'source' | 'deviceCode'>;

/** Code of a CWE triplet (`150456^MDC_PULS_OXIM_SAT_O2^MDC`, or MDIL), or undefined when not MDC. */
function mdcTriplet(id: string, text: string, system: string): ObxCode | undefined {
  const isMdc = system.toUpperCase() === 'MDC' || system.toUpperCase() === 'MDIL' || mdil.test(id);
  if (!isMdc || (id === '' && text === '')) return undefined;
  const mdc = mdcNumber(id);
  const code = text.startsWith('MDC_') ? text : id || text;
  const part: ObxCode = mdc === undefined ? { code, system: 'MDC' } : { code, system: 'MDC', mdc };
  // A vendor form of an MDC code (Philips MDIL `0002-4bb8`): the normalizer gives the MDC form,
  // the device's own code stays beside it.
  if (mdil.test(id) || (system !== '' && system.toUpperCase() !== 'MDC'))
    part.deviceCode = { code: (id || text).slice(0, 64), system: (system || 'MDIL').slice(0, 32) };
  return part;
}

/**
 * OBX-3 to a code: MDC (primary or alternate triplet), else the identifier as a LOCAL code.
 * `components` are OBX-3's, when the caller has read them already.
 */
export function obxCode(obx: Hl7Segment, components: string[] = obx.components(3)): ObxCode {
  const [id = '', text = '', system = '', altId = '', altText = '', altSystem = ''] = components;
  const primary = mdcTriplet(id, text, system);
  const alternate = primary === undefined ? mdcTriplet(altId, altText, altSystem) : undefined;
  // The device's own code first, MDC as the alternate: keep the device's beside the MDC form.
  if (alternate !== undefined && alternate.deviceCode === undefined && (id || text))
    alternate.deviceCode = { code: (id || text).slice(0, 64), system: (system || 'LOCAL').slice(0, 32) };
  const code = primary ?? alternate ?? { code: id || text, system: 'LOCAL' };
  const source = (text || id).slice(0, 64);
  if (source) code.source = source;
  return code;
}

/** OBX-6 as the normalizer expects it: an MDC reference id, a decimal MDC code, or the unit text. */
export function obxUnit(obx: Hl7Segment): string {
  const [id = '', text = '', system = ''] = obx.components(6);
  if (system.toUpperCase() === 'MDC' && text.startsWith('MDC_')) return text;
  const mdc = mdilToMdc(id);
  if (mdc !== undefined) return String(mdc);
  return id || text;
}

/** HL7 DTM (`YYYYMMDDHHMM[SS[.S+]][+ZZZZ]`) to `YYYY-MM-DDTHH:MM:SS[.fff]`; undefined when coarser. */
export function hl7Time(value: string): string | undefined {
  // The OBXs of a message mostly carry the same time: the last answer is kept.
  if (value === lastTime.value) return lastTime.time;
  const time = readTime(value);
  lastTime = { value, time };
  return time;
}

let lastTime: { value: string; time: string | undefined } = { value: '', time: undefined };

function readTime(value: string): string | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/.exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s = '00', frac = ''] = match;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}${frac}`;
}

function problem(index: number, reason: string): GatewayError {
  const cause: ObxProblem = { hl7Code: 102, location: `OBX^${index}^5` };
  return new GatewayError('ATTACHE_MALFORMED', reason, { cause });
}

function obxValue(obx: Hl7Segment, type: string, index: number): number | string {
  if (type === 'NM') {
    // HL7 NM: optional sign, digits, optional decimal part.
    const value = parseDecimal(obx.get(5).trim());
    if (value === undefined) throw problem(index, `OBX ${index}: OBX-5 not numeric`);
    return value;
  }
  if (coded.has(type)) return obx.get(5, 1) || obx.get(5, 2);
  return obxText(obx);
}

/** OBX-5 as text: every repetition's components, joined by spaces. */
export function obxText(obx: Hl7Segment): string {
  const count = obx.repetitionCount(5);
  const parts: string[] = [];
  for (let rep = 0; rep < count; rep++) parts.push(obx.components(5, rep).join(' ').trim());
  return parts.filter((p) => p !== '').join(' ');
}

/**
 * One OBX to an observation, or undefined when it carries no value (a containment header). A
 * free-text value (TX, FT, ST) is marked `freeText`. `index` is the OBX's position (1-based) for error locations; `fallbackTime` is
 * OBR-7; `code` is OBX-3's code when already read (it becomes the observation). Throws a GatewayError `ATTACHE_MALFORMED` (cause: {@link ObxProblem}) for an NM value that
 * is not a number.
 */
export function obxObservation(
  obx: Hl7Segment,
  index: number,
  fallbackTime: string,
  code: ObxCode = obxCode(obx),
): CodedObservation | undefined {
  const type = obx.get(2).toUpperCase();
  if (obx.raw(5) === '') return undefined;
  const status = statuses[obx.get(11).toUpperCase()] ?? 'questionable';
  const value = status === 'unavailable' ? null : obxValue(obx, type, index);
  // The code becomes the observation (no copy).
  const observation = code as CodedObservation;
  observation.value = value;
  observation.unit = obxUnit(obx);
  observation.status = status;
  if (freeText.has(type)) observation.freeText = true;
  const observedAt = hl7Time(obx.get(14)) ?? hl7Time(fallbackTime);
  if (observedAt !== undefined) observation.observedAt = observedAt;
  const path = obx.get(4);
  if (path !== '') observation.path = path;
  const range = obx.get(7);
  if (range !== '') observation.referenceRange = range;
  const flagCount = obx.repetitionCount(8);
  if (flagCount > 0) {
    const flags: string[] = [];
    for (let rep = 0; rep < flagCount; rep++) {
      const flag = obx.get(8, 1, rep);
      if (flag !== '') flags.push(flag);
    }
    if (flags.length > 0) observation.abnormalFlags = flags;
  }
  return observation;
}
