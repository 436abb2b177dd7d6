import type { AlarmDraft, CodedObservation } from '@attache/core';
import { hl7Time, type ObxCode, obxCode, obxObservation, obxText } from './hl7-obx.js';
import type { Hl7Message, Hl7Segment } from './hl7-parser.js';
import { vendorAlarmText } from './vendor-alarm-text.js';

/** The alarms of a message, and the OBX segments they were read from (not observations then). */
export interface Hl7Alarms {
  alarms: AlarmDraft[];
  consumed: Set<Hl7Segment>;
  /** The OBX-3 code read from each OBX not consumed, for its observation (read once per OBX). */
  codes: Map<Hl7Segment, ObxCode>;
}

/** MDC_EVT_ALARM: the first facet of an IHE PCD-04 alert (its OBX-5 names the alarm). */
const EVT_ALARM = 196616;
const priorities: Record<string, NonNullable<AlarmDraft['priority']>> = {
  PH: 'high',
  PM: 'medium',
  PL: 'low',
  PI: 'info',
  PN: 'none',
};
const kinds: Record<string, NonNullable<AlarmDraft['kind']>> = {
  SP: 'physiological',
  ST: 'technical',
  SA: 'advisory',
};
/** PCD-04 facets whose OBX-5 is a word from a fixed vocabulary, by OBX-3 reference id. */
const wordFacets: Record<string, 'phase' | 'state' | 'inactivation'> = {
  MDC_ATTR_EVENT_PHASE: 'phase',
  MDC_ATTR_ALARM_STATE: 'state',
  MDC_ATTR_ALARM_INACTIVATION_STATE: 'inactivation',
};
const word = /^[a-z-]{1,24}$/;

/** A vendor's alert code (Philips `MDIL-ALERT`): OBX-3 (its components) names an alert or alarm and is not MDC. */
function isVendorAlert([id = '', text = '']: string[]): boolean {
  const code = `${id} ${text}`.toUpperCase();
  return !code.includes('MDC_') && (code.includes('ALERT') || code.includes('ALARM'));
}

function referenceId(obx: Hl7Segment, n: number): string {
  const [id = '', text = ''] = obx.components(n);
  return text.startsWith('MDC_') ? text : id.startsWith('MDC_') ? id : '';
}

/** OBX-8 flags (`PH~SP~H`): priority, kind and direction of a PCD-04 alert. */
function flagsOf(obx: Hl7Segment, alarm: AlarmDraft): void {
  const count = obx.repetitionCount(8);
  for (let rep = 0; rep < count; rep++) {
    const flag = obx.get(8, 1, rep).toUpperCase();
    const priority = priorities[flag];
    if (priority !== undefined) alarm.priority = priority;
    const kind = kinds[flag];
    if (kind !== undefined) alarm.kind = kind;
    if (flag === 'H' || flag === 'HH') alarm.direction = 'high';
    if (flag === 'L' || flag === 'LL') alarm.direction = 'low';
  }
}

/** OBX-7 `90-100`, `>120`, `<90` as limits; undefined when it is none of these. */
export function limitsOf(range: string): AlarmDraft['limits'] {
  const text = range.trim();
  const number = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : undefined);
  if (text.startsWith('>')) return optionalLimits(number(text.slice(1)), undefined, true);
  if (text.startsWith('<')) return optionalLimits(undefined, number(text.slice(1)), true);
  const dash = text.indexOf('-', 1);
  if (dash === -1) return undefined;
  return optionalLimits(number(text.slice(0, dash)), number(text.slice(dash + 1)), false);
}

function optionalLimits(
  low: number | undefined,
  high: number | undefined,
  one: boolean,
): AlarmDraft['limits'] {
  if (low === undefined && high === undefined) return undefined;
  if (!one && (low === undefined || high === undefined)) return undefined;
  return { ...(low === undefined ? {} : { low }), ...(high === undefined ? {} : { high }) };
}

function time(obx: Hl7Segment, obrTime: string): string | undefined {
  return hl7Time(obx.get(14)) ?? hl7Time(obrTime);
}

/** The OBX-4 of a facet without its last part: `1.1.1.150456.1` → `1.1.1.150456`. */
function facetBase(path: string): string {
  const dot = path.lastIndexOf('.');
  return dot === -1 ? '' : path.slice(0, dot);
}

/**
 * IHE PCD-04 alert (MDC_EVT_ALARM and its facets, matched by OBX-4 base and facet number), a bare
 * MDC event (OBX-3 `MDC_EVT_…`, with the next numeric OBX as its parameter), or a vendor alert.
 */
export function hl7Alarms(message: Hl7Message): Hl7Alarms {
  const result: Hl7Alarms = { alarms: [], consumed: new Set(), codes: new Map() };
  let group: Hl7Segment[] = [];
  let obrTime = '';
  const flush = () => {
    readGroup(group, obrTime, result);
    group = [];
  };
  for (const segment of message.segments) {
    if (segment.name === 'OBR') {
      flush();
      obrTime = segment.get(7);
    }
    if (segment.name === 'OBX') group.push(segment);
  }
  flush();
  return result;
}

function readGroup(obxs: Hl7Segment[], obrTime: string, result: Hl7Alarms): void {
  for (const [i, obx] of obxs.entries()) {
    if (result.consumed.has(obx)) continue;
    const components = obx.components(3);
    const code = obxCode(obx, components);
    if (code.mdc === EVT_ALARM || code.code === 'MDC_EVT_ALARM') {
      result.alarms.push(pcd04(obx, obxs, obrTime, result.consumed));
    } else if (code.code.startsWith('MDC_EVT_')) {
      result.alarms.push(bareEvent(obx, obxs.slice(i + 1), obrTime, result.consumed));
    } else if (isVendorAlert(components)) {
      result.alarms.push(vendor(obx, obrTime, result.consumed));
    } else result.codes.set(obx, code);
  }
}

function pcd04(
  first: Hl7Segment,
  obxs: Hl7Segment[],
  obrTime: string,
  consumed: Set<Hl7Segment>,
): AlarmDraft {
  consumed.add(first);
  const [id = '', text = '', system = ''] = first.components(5);
  const named = id !== '' || text !== '' ? identity(id, text, system) : obxCode(first);
  const alarm: AlarmDraft = { ...named, origin: 'pcd-04' };
  flagsOf(first, alarm);
  const path = first.get(4);
  if (path !== '') alarm.path = path.slice(0, 64);
  const at = time(first, obrTime);
  if (at !== undefined) alarm.observedAt = at;
  const base = facetBase(path);
  for (const obx of obxs) {
    if (consumed.has(obx) || (base !== '' && facetBase(obx.get(4)) !== base)) continue;
    if (facet(obx, alarm, base === '' ? '' : obx.get(4).slice(base.length + 1))) consumed.add(obx);
  }
  return alarm;
}

/** Reads one facet into the alarm; false when the OBX is not a facet of it. */
function facet(obx: Hl7Segment, alarm: AlarmDraft, n: string): boolean {
  const ref = referenceId(obx, 3);
  const value = obxText(obx).toLowerCase();
  const field = wordFacets[ref];
  if (field !== undefined) {
    if (word.test(value)) alarm[field] = value;
    return true;
  }
  if (ref === 'MDC_ATTR_ALARM_PRIORITY') {
    const priority = priorities[value.toUpperCase()];
    if (priority !== undefined) alarm.priority = priority;
    return true;
  }
  if (ref === 'MDC_ATTR_ALERT_TYPE') {
    const kind = kinds[value.toUpperCase()];
    if (kind !== undefined) alarm.kind = kind;
    return true;
  }
  if (ref === 'MDC_ATTR_ALERT_TEXT') {
    alarm.text = obxText(obx);
    return true;
  }
  if (ref === 'MDC_ATTR_ALERT_SOURCE') return true;
  // Facet 2 is the parameter; without sub-ids, the first numeric OBX of the alert's group.
  const isParameter = n === '2' || (n === '' && obx.get(2).toUpperCase() === 'NM');
  if (isParameter && alarm.parameter === undefined) {
    setParameter(alarm, obx);
    return true;
  }
  return false;
}

function identity(id: string, text: string, system: string): Pick<AlarmDraft, 'code' | 'system' | 'mdc'> {
  const code = text.startsWith('MDC_') ? text : id || text;
  const mdc = /^\d{1,10}$/.test(id) ? Number(id) : undefined;
  const isMdc = system.toUpperCase() === 'MDC' || code.startsWith('MDC_');
  return {
    code: code.slice(0, 64),
    system: isMdc ? 'MDC' : 'LOCAL',
    ...(isMdc && mdc !== undefined ? { mdc } : {}),
  };
}

function setParameter(alarm: AlarmDraft, obx: Hl7Segment): void {
  const parameter: CodedObservation | undefined = obxObservation(obx, 0, '');
  if (parameter !== undefined) alarm.parameter = parameter;
  const limits = limitsOf(obx.get(7));
  if (limits !== undefined) alarm.limits = limits;
  if (alarm.direction === undefined) flagsOf(obx, alarm);
}

function bareEvent(
  first: Hl7Segment,
  after: Hl7Segment[],
  obrTime: string,
  consumed: Set<Hl7Segment>,
): AlarmDraft {
  consumed.add(first);
  const { code, system, mdc } = obxCode(first);
  const alarm: AlarmDraft = { code, system, ...(mdc === undefined ? {} : { mdc }), origin: 'pcd-04' };
  flagsOf(first, alarm);
  if (code.endsWith('_HI') || code.includes('_HI_')) alarm.direction = 'high';
  if (code.endsWith('_LO') || code.includes('_LO_')) alarm.direction = 'low';
  const path = first.get(4);
  if (path !== '') alarm.path = path.slice(0, 64);
  const at = time(first, obrTime);
  if (at !== undefined) alarm.observedAt = at;
  const next = after.find((obx) => !consumed.has(obx) && obx.get(2).toUpperCase() === 'NM');
  if (next !== undefined) {
    consumed.add(next);
    setParameter(alarm, next);
  }
  return alarm;
}

function vendor(obx: Hl7Segment, obrTime: string, consumed: Set<Hl7Segment>): AlarmDraft {
  consumed.add(obx);
  const [id = '', text = '', system = ''] = obx.components(3);
  const own = (id || text).slice(0, 64);
  const alarm: AlarmDraft = {
    code: own,
    system: 'LOCAL',
    deviceCode: { code: own, system: (system || 'LOCAL').slice(0, 32) },
    origin: 'vendor',
  };
  const path = obx.get(4);
  if (path !== '') alarm.path = path.slice(0, 64);
  const at = time(obx, obrTime);
  if (at !== undefined) alarm.observedAt = at;
  const sent = obxText(obx);
  if (sent !== '') {
    Object.assign(alarm, vendorAlarmText(sent));
    alarm.text = sent;
  }
  flagsOf(obx, alarm);
  return alarm;
}
