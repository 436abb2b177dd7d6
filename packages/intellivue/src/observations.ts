import type { AlarmDraft, CodedObservation } from '@attache/core';
import type { Reader } from './pdu.js';

/** Attribute ids (NOM_ATTR_…). */
const ATTR_NU_VAL_OBS = 0x0950;
const ATTR_NU_CMPD_VAL_OBS = 0x094b;
const ATTR_AL_MON_P_AL_LIST = 0x0902;
const ATTR_AL_MON_T_AL_LIST = 0x0904;
/** The StrAlMonInfo alert-info id: an alert carrying its text. */
const ALERT_STRING_INFO = 0x0908;

/** MeasurementState bits. */
const INVALID = 0x8000;
const QUESTIONABLE = 0x4000;
const UNAVAILABLE = 0x2000;
const CALIBRATION_ONGOING = 0x1000;
const TEST_DATA = 0x0800;
const DEMO_DATA = 0x0400;

/** MDC partitions: SCADA (physio ids), DIM (units), EVT (alert codes). */
const SCADA = 2 << 16;
const DIM = 4 << 16;
const EVT = 3 << 16;

/**
 * Unit codes (MDC_DIM term codes) to UCUM. Others are kept as `MDC_DIM:<code>`, which is not UCUM:
 * the record then has `unit: null` and the device's spelling.
 */
export const UNITS: ReadonlyMap<number, string> = new Map([
  [512, '1'], // MDC_DIM_DIMLESS
  [544, '%'], // MDC_DIM_PERCENT
  [2720, '/min'], // MDC_DIM_BEAT_PER_MIN
  [2784, '/min'], // MDC_DIM_RESP_PER_MIN
  [3872, 'mm[Hg]'], // MDC_DIM_MMHG
  [3843, 'kPa'], // MDC_DIM_KILO_PASCAL
  [3904, 'cm[H2O]'], // MDC_DIM_CM_H2O
  [6048, 'Cel'], // MDC_DIM_DEGC
]);

/**
 * FLOAT-Type: 8-bit signed exponent, 24-bit signed mantissa, value = mantissa × 10^exponent; the
 * special mantissas (NaN, NRes, ±infinity) give null.
 */
export function floatType(raw: number): number | null {
  const exponent = ((raw >>> 24) << 24) >> 24;
  let mantissa = raw & 0xffffff;
  if (mantissa === 0x7fffff || mantissa === 0x800000 || mantissa === 0x7ffffe || mantissa === 0x800002)
    return null;
  if (mantissa & 0x800000) mantissa -= 0x1000000;
  const value = mantissa * 10 ** exponent;
  return exponent < 0 ? Number(value.toFixed(-exponent)) : value;
}

/** Philips' MDIL spelling of an MDC code: `0002-4bb8`. */
function mdil(partition: number, term: number): string {
  return `${partition.toString(16).padStart(4, '0')}-${term.toString(16).padStart(4, '0')}`;
}

/** One NuObsValue: physio id, measurement state, unit code, FLOAT-Type value. */
function nuObsValue(r: Reader, handle: number): CodedObservation {
  const physioId = r.u16();
  const state = r.u16();
  const unitCode = r.u16();
  const raw = floatType(r.u32());
  const invalid = (state & (INVALID | UNAVAILABLE)) !== 0 || raw === null;
  const doubtful = (state & (QUESTIONABLE | CALIBRATION_ONGOING | TEST_DATA | DEMO_DATA)) !== 0;
  return {
    code: String(SCADA + physioId),
    system: 'MDC',
    mdc: SCADA + physioId,
    value: invalid ? null : raw,
    unit: UNITS.get(unitCode) ?? `MDC_DIM:${DIM + unitCode}`,
    status: invalid ? 'unavailable' : doubtful ? 'questionable' : 'valid',
    deviceCode: { code: mdil(2, physioId), system: 'MDIL' },
    path: `handle:${handle}`,
  };
}

const PRIORITY: Record<number, AlarmDraft['priority']> = {
  0: 'none',
  1: 'low',
  2: 'medium',
  4: 'high',
  256: 'low',
  512: 'medium',
  1024: 'high',
};

/** StrAlMonInfo: instance, text id, priority, flags, then a String (length, UTF-16BE characters). */
function alertText(info: Reader): string {
  info.bytes(10);
  const text = info.bytes(info.u16());
  const decoded = Buffer.from(text.subarray(0, text.length & ~1))
    .swap16()
    .toString('utf16le');
  const nul = decoded.indexOf('\0');
  return nul < 0 ? decoded : decoded.slice(0, nul);
}

/** One DevAlarmEntry of a DevAlarmList. */
function alarmEntry(r: Reader, kind: AlarmDraft['kind']): AlarmDraft {
  const source = r.u16();
  const code = r.u16();
  const type = r.u16();
  r.u16(); // al_state
  r.bytes(6); // the object that raised it
  const infoId = r.u16();
  const info = r.sub(r.u16());
  const text = infoId === ALERT_STRING_INFO && info.left >= 12 ? alertText(info) : undefined;
  return {
    code: String(EVT + code),
    system: 'MDC',
    mdc: EVT + code,
    origin: 'vendor',
    kind,
    priority: PRIORITY[type] ?? 'info',
    deviceCode: { code: mdil(3, code), system: 'MDIL' },
    parameter: {
      code: String(SCADA + source),
      system: 'MDC',
      mdc: SCADA + source,
      value: null,
      unit: '',
      status: 'unavailable',
      deviceCode: { code: mdil(2, source), system: 'MDIL' },
    },
    ...(text ? { text } : {}),
  };
}

/** What one poll reply holds. */
export interface PollContent {
  observations: CodedObservation[];
  alarms: AlarmDraft[];
}

/** Walks an AttributeList of one polled object. */
function attributes(r: Reader, handle: number, out: PollContent): void {
  const count = r.u16();
  const list = r.sub(r.u16());
  for (let i = 0; i < count; i++) {
    const id = list.u16();
    const value = list.sub(list.u16());
    if (id === ATTR_NU_VAL_OBS) out.observations.push(nuObsValue(value, handle));
    else if (id === ATTR_NU_CMPD_VAL_OBS) {
      const n = value.u16();
      value.u16();
      for (let k = 0; k < n; k++) out.observations.push(nuObsValue(value, handle));
    } else if (id === ATTR_AL_MON_P_AL_LIST || id === ATTR_AL_MON_T_AL_LIST) {
      const kind = id === ATTR_AL_MON_P_AL_LIST ? 'physiological' : 'technical';
      const n = value.u16();
      const entries = value.sub(value.u16());
      for (let k = 0; k < n; k++) out.alarms.push(alarmEntry(entries, kind));
    }
  }
}

/**
 * The numerics and alerts of a poll reply's ActionResult (managed object, action type, length,
 * PollMdibDataReplyExt). Throws a RangeError when a length points past the end.
 */
export function pollContent(body: Reader, out: PollContent): void {
  body.bytes(6);
  body.u16(); // action type
  const reply = body.sub(body.u16());
  reply.bytes(2 + 2 + 4 + 8 + 4 + 2); // poll number, sequence, relative and absolute time, object type, group
  const contexts = reply.u16();
  const list = reply.sub(reply.u16());
  for (let c = 0; c < contexts; c++) {
    list.u16(); // context id
    const n = list.u16();
    const polls = list.sub(list.u16());
    for (let k = 0; k < n; k++) {
      const handle = polls.u16();
      attributes(polls, handle, out);
    }
  }
}
