import type { Hl7Message, Hl7Segment } from './hl7-parser.js';

/** A message's patients, as {@link patientParts} splits it. */
export type Hl7PatientParts =
  /** At most one patient (no PID, or every PID names the same one): read the message whole. */
  | { kind: 'one' }
  /** Several patients: one message per patient, each the header segments and that patient's groups. */
  | { kind: 'several'; parts: Hl7Message[] }
  /** Ambiguous: which patient a segment belongs to cannot be told. AE 100 or 101 at `location`. */
  | { kind: 'ambiguous'; hl7Code: number; reason: string; location: string };

/**
 * The segments an ORU^R01 may carry before its first PATIENT_RESULT group (HL7 v2.5 §7.3.1: MSH,
 * SFT); anything else before the first PID belongs to no patient.
 */
const headerSegments = new Set(['MSH', 'SFT']);

function ambiguous(hl7Code: number, reason: string, location: string): Hl7PatientParts {
  return { kind: 'ambiguous', hl7Code, reason, location };
}

/** The ID of the first repetition of a PID's PID-3 that has one. */
export function pidId(pid: Hl7Segment): string | undefined {
  const count = pid.repetitionCount(3);
  for (let rep = 0; rep < count; rep++) {
    const id = pid.get(3, 1, rep).trim();
    if (id !== '') return id;
  }
  return undefined;
}

/**
 * Splits a message by patient. ORU^R01 is `MSH [{SFT}] {PATIENT_RESULT}`, each PATIENT_RESULT being
 * `[PID [PD1] [{NTE}] [{NK1}] [PV1 [PV2]]] {ORDER_OBSERVATION}`: a PID starts the segments of its
 * patient, which run to the next PID of another patient. A PID repeated for the same patient (same
 * PID-3 ID) continues that patient's part, wherever it comes. With several patients, a message is
 * ambiguous (refused) when a PID has no PID-3 ID, when a segment other than MSH or SFT comes before
 * the first PID (results of no patient, or of the first one?), or when `splits` is false (message
 * types other than ORU^R01 carry one patient). One pass over the segments for a single patient,
 * two for several.
 */
export function patientParts(message: Hl7Message, splits: boolean): Hl7PatientParts {
  const { segments } = message;
  const first = segments.findIndex((s) => s.name === 'PID');
  if (first < 0) return { kind: 'one' };
  // One patient, by far the most common: nothing is built.
  const firstKey = pidId(segments[first] as Hl7Segment) ?? '';
  let other: number | undefined;
  for (let i = first + 1; i < segments.length && other === undefined; i++) {
    const segment = segments[i] as Hl7Segment;
    if (segment.name === 'PID' && (pidId(segment) ?? '') !== firstKey) other = i;
  }
  if (other === undefined) return { kind: 'one' };
  if (!splits) {
    const n = other + 1;
    return ambiguous(100, `segment ${n} is a PID of another patient: one per message of this type`, `${n}`);
  }
  const byPatient = new Map<string, Hl7Segment[]>();
  let current: Hl7Segment[] = [];
  let missing: number | undefined;
  let pidCount = 0;
  for (let i = first; i < segments.length; i++) {
    const segment = segments[i] as Hl7Segment;
    if (segment.name === 'PID') {
      pidCount++;
      const id = pidId(segment);
      if (id === undefined) missing ??= pidCount;
      const key = id ?? '';
      current = byPatient.get(key) ?? [];
      byPatient.set(key, current);
    }
    current.push(segment);
  }
  if (missing !== undefined) {
    return ambiguous(
      101,
      `PID ${missing} has no PID-3 ID in a message with several patients`,
      `PID^${missing}^3`,
    );
  }
  const stray = segments.findIndex((s, i) => i < first && !headerSegments.has(s.name));
  if (stray >= 0) {
    const n = stray + 1;
    return ambiguous(
      100,
      `segment ${n} comes before the first PID of a message with several patients`,
      `${n}`,
    );
  }
  const header = segments.slice(0, first);
  const parts = [...byPatient.values()].map((own) => ({ ...message, segments: [...header, ...own] }));
  return { kind: 'several', parts };
}
