import {
  type CodedObservation,
  type DeviceReading,
  GatewayError,
  type InstrumentIdentity,
} from '@attache/core';
import type { Hl7AckCode, Hl7AckError } from './hl7-ack.js';
import { type Hl7Alarms, hl7Alarms } from './hl7-alarms.js';
import { hl7Time, obxObservation } from './hl7-obx.js';
import { decodeHl7Bytes, type Hl7Message, parseHl7Message, parseProblem } from './hl7-parser.js';
import { patientParts, pidId } from './hl7-patients.js';
import { hl7People, nteText } from './hl7-people.js';

/** The parts of a reading an HL7 message gives (the adapter adds device id and arrival times). */
export type Hl7ReadingParts = Pick<
  DeviceReading,
  | 'protocol'
  | 'fields'
  | 'markers'
  | 'raw'
  | 'observations'
  | 'patientId'
  | 'instrument'
  | 'deviceTime'
  | 'event'
  | 'notes'
  | 'people'
  | 'alarms'
>;

/** What to do with one HL7 message. */
export type Hl7Interpretation =
  /** Store it, then ACK AA. */
  | { kind: 'reading'; message: Hl7Message; reading: Hl7ReadingParts }
  /**
   * An ORU^R01 with several patients: one reading per patient, in the order of their first PID.
   * Store all of them or none, then ACK AA.
   */
  | { kind: 'readings'; message: Hl7Message; readings: Hl7ReadingParts[] }
  /** Do not store; ACK with `code` and `error`. */
  | { kind: 'reject'; message: Hl7Message | undefined; code: Exclude<Hl7AckCode, 'AA'>; error: Hl7AckError }
  /** An ACK from the peer: neither stored nor acknowledged. */
  | { kind: 'ignore'; message: Hl7Message; reason: string };

/** Options of {@link interpretHl7}. */
export interface Hl7InterpretOptions {
  /** MSH-12 versions accepted; others are refused with AR. */
  versions: readonly string[];
  /**
   * Whether the device's config keeps free text (`format.freeText`). The people fields are read only
   * then: the normalizer uses them to de-identify free text, and drops free text otherwise. Default true.
   */
  freeText?: boolean;
}

/** Message types recorded (ORU^R01 as observations, the rest as events); others get AR 200. */
const supportedTypes = new Set(['ORU', 'ADT', 'ORM', 'OML', 'OUL']);
const eui64 = /^[0-9A-Fa-f]{16}$/;

function reject(
  message: Hl7Message | undefined,
  code: 'AE' | 'AR',
  hl7Code: number,
  reason: string,
  location?: string,
): Hl7Interpretation {
  const error: Hl7AckError = location === undefined ? { hl7Code, reason } : { hl7Code, reason, location };
  return { kind: 'reject', message, code, error };
}

/** The first problem with MSH-9, MSH-10 and MSH-12, or undefined. */
function checkHeader(message: Hl7Message, versions: readonly string[]): Hl7Interpretation | undefined {
  const { msh } = message;
  for (const [n, name] of [
    [9, 'message type'],
    [10, 'message control id'],
    [12, 'version id'],
  ] as const) {
    if (msh.get(n) === '') return reject(message, 'AE', 101, `MSH-${n} ${name} missing`, `MSH^1^${n}`);
  }
  if (!versions.includes(msh.get(12))) {
    return reject(message, 'AR', 203, 'unsupported version id', 'MSH^1^12');
  }
  if (!supportedTypes.has(msh.get(9).toUpperCase())) {
    return reject(message, 'AR', 200, 'unsupported message type', 'MSH^1^9');
  }
  return undefined;
}

/**
 * A refusal (AE, 100 segment sequence error) when the frame holds a second MSH: two messages run
 * together (a batch without FHS/BHS), whose boundary the ACK could not tell the sender.
 */
function checkOneMessage(message: Hl7Message): Hl7Interpretation | undefined {
  const i = message.segments.findIndex((segment, n) => n > 0 && segment.name === 'MSH');
  if (i < 0) return undefined;
  return reject(message, 'AE', 100, `segment ${i + 1} is a second MSH: one message per frame`, `${i + 1}`);
}

/** An instrument identity: the EUI-64 (upper case), and the name when there is one (at most 64 characters). */
function identity(name: string, eui: string): InstrumentIdentity {
  return name === '' ? { eui64: eui.toUpperCase() } : { name: name.slice(0, 64), eui64: eui.toUpperCase() };
}

function instrument(message: Hl7Message): InstrumentIdentity | undefined {
  const { msh } = message;
  const id = msh.get(3, 2);
  if (eui64.test(id)) {
    const type = msh.get(3, 3);
    if (type === '' || type.toUpperCase() === 'EUI-64') return identity(msh.get(3, 1), id);
  }
  const obx18 = message.segments.find((s) => s.name === 'OBX' && eui64.test(s.get(18)));
  if (obx18 !== undefined) return identity(obx18.get(18, 2), obx18.get(18));
  const name = msh.get(3, 1);
  return name ? { name: name.slice(0, 64) } : undefined;
}

/** PID-3: the ID of its first repetition that has one. */
function patientId(message: Hl7Message): string | undefined {
  const pid = message.segments.find((s) => s.name === 'PID');
  return pid === undefined ? undefined : pidId(pid);
}

/**
 * OBX observations (less those an alarm was read from), with the NTEs after each; other NTEs are
 * notes. `codes` holds the OBX-3 codes the alarm pass already read.
 */
function observations(
  message: Hl7Message,
  { consumed, codes }: Pick<Hl7Alarms, 'consumed' | 'codes'>,
): { found: CodedObservation[]; notes: string[] } {
  const found: CodedObservation[] = [];
  const notes: string[] = [];
  let obrTime = '';
  let index = 0;
  let last: CodedObservation | undefined;
  for (const segment of message.segments) {
    if (segment.name === 'NTE') {
      const text = nteText(segment);
      if (text === '') continue;
      if (last === undefined) notes.push(text);
      else {
        if (last.comments === undefined) last.comments = [];
        last.comments.push(text);
      }
      continue;
    }
    if (segment.name !== 'OBX') {
      last = undefined;
      if (segment.name === 'OBR') obrTime = segment.get(7);
      continue;
    }
    index++;
    last = consumed.has(segment) ? undefined : obxObservation(segment, index, obrTime, codes.get(segment));
    if (last !== undefined) found.push(last);
  }
  return { found, notes };
}

function eventOf(message: Hl7Message): NonNullable<DeviceReading['event']> {
  const type = message.msh.get(9).toUpperCase();
  const trigger = message.msh.get(9, 2).toUpperCase();
  const name = `hl7.${type}${trigger ? `-${trigger}` : ''}`.toLowerCase().replace(/[^a-z0-9.-]/g, '');
  return {
    type: name.slice(0, 48),
    detail: {
      messageType: trigger ? `${type}^${trigger}` : type,
      version: message.msh.get(12),
      segments: message.segments.length,
    },
  };
}

function alarmEvent(message: Hl7Message, count: number): NonNullable<DeviceReading['event']> {
  const { detail } = eventOf(message);
  return { type: 'alarm', detail: { ...detail, alarms: count } };
}

/** What {@link hl7Alarms} gives for a message that is not an ORU: nothing. */
function noAlarms(): Hl7Alarms {
  return { alarms: [], consumed: new Set(), codes: new Map() };
}

function readingOf(message: Hl7Message, freeText: boolean): Hl7ReadingParts {
  const isOru = message.msh.get(9).toUpperCase() === 'ORU';
  const isObservation = isOru && message.msh.get(9, 2).toUpperCase() === 'R01';
  if (isObservation && !message.segments.some((s) => s.name === 'OBX')) {
    // Nothing to store. (An OBR is not required: devices that leave it out still get their OBXs stored.)
    const cause = { hl7Code: 100, location: 'OBX' };
    throw new GatewayError('ATTACHE_MALFORMED', 'ORU^R01 without any OBX segment', { cause });
  }
  // Alarms (PCD-04 alert reports, vendor alert codes) are read from their OBXs first.
  const { alarms, ...read } = isOru ? hl7Alarms(message) : noAlarms();
  const { found, notes } = observations(message, read);
  const parts: Hl7ReadingParts = {
    protocol: 'hl7-mllp',
    fields: [],
    markers: [],
    // Only the MSH: PID, PV1 and the rest may carry patient data and never enter the reading.
    raw: Buffer.from(message.mshText, 'utf8'),
    // Other ORU triggers (an R40 alarm) are events that keep their OBXs: which alarm, which value.
    observations: isOru ? found : [],
  };
  if (alarms.length > 0) {
    parts.alarms = alarms;
    parts.event = alarmEvent(message, alarms.length);
  } else if (!isObservation) parts.event = eventOf(message);
  if (notes.length > 0) parts.notes = notes;
  const people = freeText ? hl7People(message) : [];
  if (people.length > 0) parts.people = people;
  const id = patientId(message);
  if (id !== undefined) parts.patientId = id;
  const identity = instrument(message);
  if (identity !== undefined) parts.instrument = identity;
  const time = hl7Time(message.msh.get(7));
  if (time !== undefined) parts.deviceTime = time;
  return parts;
}

/**
 * Decides what to do with one HL7 message (the payload of an MLLP frame): a reading to store, or an
 * AE/AR with its reason, or nothing (an incoming ACK). Pure. Reasons never quote the message.
 */
export function interpretHl7(payload: Buffer, options: Hl7InterpretOptions): Hl7Interpretation {
  let message: Hl7Message;
  try {
    message = parseHl7Message(decodeHl7Bytes(payload));
  } catch (err) {
    const problem = parseProblem(err);
    const reason = err instanceof Error ? err.message : String(err);
    return reject(undefined, 'AE', problem?.hl7Code ?? 102, reason, problem?.location);
  }
  if (message.msh.get(9).toUpperCase() === 'ACK')
    return { kind: 'ignore', message, reason: 'an ACK is not acknowledged' };
  const header = checkHeader(message, options.versions) ?? checkOneMessage(message);
  if (header !== undefined) return header;
  const freeText = options.freeText ?? true;
  try {
    const split = patientParts(message, isOruR01(message));
    if (split.kind === 'ambiguous') {
      return reject(message, 'AE', split.hl7Code, split.reason, split.location);
    }
    if (split.kind === 'one') return { kind: 'reading', message, reading: readingOf(message, freeText) };
    return readingsOf(message, split.parts, freeText);
  } catch (err) {
    const problem = parseProblem(err);
    const reason = err instanceof Error ? err.message : String(err);
    return reject(message, 'AE', problem?.hl7Code ?? 207, reason, problem?.location);
  }
}

function isOruR01(message: Hl7Message): boolean {
  return message.msh.get(9).toUpperCase() === 'ORU' && message.msh.get(9, 2).toUpperCase() === 'R01';
}

/**
 * The readings of an ORU^R01's patients: each part read as a message of its own (its PID, notes,
 * orders, observations and alarms), a patient without any OBX left out (nothing to store). Every
 * part gets the whole message's `people`, so that a note naming another patient of the message is
 * de-identified too, and the message's instrument.
 */
function readingsOf(message: Hl7Message, parts: Hl7Message[], freeText: boolean): Hl7Interpretation {
  const withResults = parts.filter((part) => part.segments.some((s) => s.name === 'OBX'));
  // None: refused as any ORU^R01 without an OBX.
  if (withResults.length === 0) return { kind: 'reading', message, reading: readingOf(message, freeText) };
  const people = freeText ? hl7People(message) : [];
  const identity = instrument(message);
  const readings = withResults.map((part) => {
    const reading = readingOf(part, false);
    if (people.length > 0) reading.people = people;
    if (identity !== undefined) reading.instrument = identity;
    return reading;
  });
  if (readings.length === 1) return { kind: 'reading', message, reading: readings[0] as Hl7ReadingParts };
  return { kind: 'readings', message, readings };
}
