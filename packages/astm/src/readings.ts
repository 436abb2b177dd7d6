import type { CodedObservation, DeviceReading, InstrumentIdentity } from '@attache/core';
import { parseDecimal } from '@attache/core';
import type { AstmComment, AstmMessage, AstmResult } from './types.js';

/**
 * A reading as an ASTM message gives it; the adapter adds what the transport knows (device id,
 * adapter, arrival times, raw bytes).
 */
export type AstmReadingParts = Omit<
  DeviceReading,
  'deviceId' | 'adapter' | 'receivedAt' | 'monotonicMs' | 'raw'
>;

/** Options of {@link astmReadings}. */
export interface AstmReadingOptions {
  /**
   * Keep comments (`format.comments`): C records after an R with their observation, the others as
   * the reading's `notes`, with the message's `people` for the normalizer's de-identification.
   */
  comments: boolean;
}

/** `YYYYMMDDHHMMSS` (or `YYYYMMDDHHMM`) as `YYYY-MM-DDTHH:MM:SS`; anything else is left out. */
export function astmTime(value: string | null): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?$/.exec(value ?? '');
  if (m === null) return undefined;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}`;
}

/** H.5 `name^serial^version` (ASTM E1394; vendors differ), empty parts left out. */
function instrument(message: AstmMessage): InstrumentIdentity | undefined {
  const [name, serial, version] = message.header.sender.components;
  const identity: InstrumentIdentity = {};
  if (name) identity.name = name;
  if (serial) identity.serial = serial;
  if (version) identity.version = version;
  return Object.keys(identity).length > 0 ? identity : undefined;
}

function status(result: AstmResult, value: CodedObservation['value']): CodedObservation['status'] {
  if (value === null || result.status === 'X') return 'unavailable';
  if (result.status === 'P' || result.status === 'W') return 'questionable';
  return 'valid';
}

/** One R record as a coded observation: LOINC when the test id's 3rd component says so, else LOCAL. */
export function astmObservation(result: AstmResult, options: AstmReadingOptions): CodedObservation {
  const [universal, , type] = result.testId.components;
  const loinc = universal !== undefined && universal !== '' && (type === 'LN' || type === 'LOINC');
  const raw = result.value.trim();
  const value = raw === '' ? null : (parseDecimal(raw) ?? raw);
  const observation: CodedObservation = {
    code: loinc ? universal : result.testId.code,
    system: loinc ? 'LOINC' : 'LOCAL',
    value,
    unit: result.units ?? '',
    status: status(result, value),
    source: result.testId.code,
  };
  if (result.referenceRange !== null) observation.referenceRange = result.referenceRange;
  const flags = result.abnormalFlags.filter((flag) => flag !== '');
  if (flags.length > 0) observation.abnormalFlags = flags;
  const observedAt = astmTime(result.completedAt) ?? astmTime(result.startedAt);
  if (observedAt !== undefined) observation.observedAt = observedAt;
  if (options.comments && result.comments.length > 0) {
    observation.comments = result.comments.map((c) => c.text);
  }
  return observation;
}

/**
 * The readings of one parsed message, in message order: one per order (O record) that has results,
 * with its patient (P) id and specimen (O.3) id, then one per patient for results without an order,
 * then one event reading (`astm.query`) per Q record. A message without results or queries gives
 * none. Each reading's notes are the C records after the H record, after its patient's P record and
 * after its O record: never another patient's.
 */
export function astmReadings(message: AstmMessage, options: AstmReadingOptions): AstmReadingParts[] {
  const common = {
    protocol: 'astm',
    fields: [],
    markers: [],
    ...optional('deviceTime', astmTime(message.header.timestamp)),
    ...optional('instrument', instrument(message)),
  };
  // One group per order; the results of a patient without an order, one group per patient.
  const groups = new Map<
    string,
    { orderIndex: number | null; patientIndex: number | null; results: AstmResult[] }
  >();
  for (const result of message.results) {
    const { orderIndex, patientIndex } = result;
    const key = orderIndex === null ? `p${patientIndex}` : `o${orderIndex}`;
    const group = groups.get(key) ?? { orderIndex, patientIndex, results: [] };
    group.results.push(result);
    groups.set(key, group);
  }
  const readings: AstmReadingParts[] = [];
  // C records after the H record concern every order of the message; after a P, that patient's.
  const general = message.comments.filter((c) => c.attachedTo === 'message');
  const last = Number.MAX_SAFE_INTEGER;
  const sorted = [...groups.values()].sort(
    (a, b) =>
      (a.orderIndex ?? last) - (b.orderIndex ?? last) || (a.patientIndex ?? last) - (b.patientIndex ?? last),
  );
  for (const { orderIndex, patientIndex: resultPatient, results } of sorted) {
    const order = orderIndex === null ? undefined : message.orders[orderIndex];
    const patientIndex = order?.patientIndex ?? resultPatient ?? (message.patients.length === 1 ? 0 : null);
    const patient = patientIndex === null ? undefined : message.patients[patientIndex];
    const comments = [...general, ...(patient?.comments ?? []), ...(order?.comments ?? [])];
    readings.push({
      ...common,
      observations: results.map((r) => astmObservation(r, options)),
      ...optional('patientId', patient?.patientId ?? undefined),
      ...optional('specimenId', order?.specimenId ?? undefined),
      ...(options.comments ? freeText(message, comments) : {}),
    });
  }
  for (const query of message.queries) {
    const tests = query.testIds.map((id) => id.code).filter((code) => code !== '');
    readings.push({
      ...common,
      observations: [],
      ...optional('specimenId', query.specimenId ?? undefined),
      event: {
        type: 'astm.query',
        detail: {
          tests: tests.join(',') || 'ALL',
          ...optional('statusCode', query.statusCode ?? undefined),
        },
      },
    });
  }
  return readings;
}

/** A reading's `notes` (non-empty comment texts) and, when there is free text, the message's `people`. */
function freeText(message: AstmMessage, comments: AstmComment[]): Pick<AstmReadingParts, 'notes' | 'people'> {
  const notes = comments.map((c) => c.text).filter((text) => text !== '');
  const hasText = notes.length > 0 || message.results.some((r) => r.comments.length > 0);
  return {
    ...(notes.length > 0 ? { notes } : {}),
    ...(hasText && message.people.length > 0 ? { people: message.people } : {}),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * What a reading keeps as its `raw` frame (stored only with the device's `rawFrames`): the message's
 * H record, never the rest, because P records carry names and birth dates.
 */
export function astmRawHeader(text: string): Buffer {
  return Buffer.from(text.split(/[\r\n]/, 1)[0] ?? '', 'latin1');
}
