import { GatewayError } from '@attache/core';
import { type AstmDelimiters, AstmFieldReader } from './fields.js';
import {
  type AstmComment,
  type AstmMessage,
  type AstmOrder,
  type AstmPatient,
  type AstmPatientField,
  type AstmQuery,
  type AstmResult,
  type AstmTestId,
  PATIENT_FIELDS,
} from './types.js';

const RECORD_TYPES = new Set(['H', 'P', 'O', 'R', 'C', 'Q', 'M', 'S', 'L']);

/** Parser state while walking the records of one message. */
interface Walk {
  message: AstmMessage;
  /** What a C record attaches to: the latest P, O or R record. */
  last: 'message' | 'patient' | 'order' | 'result';
  /** The number of the first O or R record before any P record. */
  orphan?: number;
}

/**
 * Parses one ASTM E1394 / LIS2-A2 message (H … L; records end in CR, LF tolerated) with the
 * delimiters its H record declares. Patient records keep only the patient ID and the names of the
 * other fields present (see `AstmPatient`). Each O, R and C record belongs to the P record above
 * it; an O or R record before the first P record of a message with several is refused.
 * @throws GatewayError `ATTACHE_MALFORMED` with the record number and reason, never the content.
 */
export function parseAstmMessage(text: string): AstmMessage {
  const records = text.split(/[\r\n]+/).filter((record) => record.length > 0);
  const first = records[0];
  if (first === undefined) throw malformed(0, 'no records');
  if (first[0] !== 'H') throw malformed(1, 'message does not start with an H record');
  const delimiters = readDelimiters(first);
  const walk: Walk = {
    message: {
      header: parseHeader(new AstmFieldReader(splitHeader(first, delimiters), delimiters), delimiters),
      patients: [],
      orders: [],
      results: [],
      comments: [],
      queries: [],
      people: [],
      manufacturer: 0,
      terminator: null,
    },
    last: 'message',
  };
  for (const [i, record] of records.slice(1).entries()) {
    const n = i + 2;
    const type = record.charAt(0);
    if (!RECORD_TYPES.has(type)) throw malformed(n, 'unknown record type');
    if (record.length > 1 && record[1] !== delimiters.field)
      throw malformed(n, 'record type not followed by the field delimiter');
    if (walk.message.terminator !== null) throw malformed(n, 'record after the L record');
    if (type === 'H') throw malformed(n, 'second H record');
    if ((type === 'O' || type === 'R') && walk.message.patients.length === 0) walk.orphan ??= n;
    addRecord(walk, type, new AstmFieldReader(record.split(delimiters.field), delimiters));
  }
  // With one patient, results before its P record are its own (as sent by analyzers that leave P
  // out of the hierarchy); with several, whose they are cannot be told.
  if (walk.orphan !== undefined && walk.message.patients.length > 1) {
    throw malformed(walk.orphan, 'O or R record before the first of several P records');
  }
  return walk.message;
}

function malformed(n: number, reason: string): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', `ASTM record ${n}: ${reason}`);
}

/** The delimiters of `H|\^&…`: field, repeat, component, escape; four distinct non-alphanumerics. */
function readDelimiters(header: string): AstmDelimiters {
  const chars = header.slice(1, 5);
  const distinct = new Set(chars);
  if (chars.length < 4 || distinct.size < 4 || /[A-Za-z0-9\s]/.test(chars)) {
    throw malformed(1, 'H record does not declare four distinct delimiters');
  }
  const [field, repeat, component, esc] = [...chars] as [string, string, string, string];
  return { field, repeat, component, escape: esc };
}

/** The H record's fields; H.2 holds the delimiters themselves and is kept verbatim. */
function splitHeader(header: string, d: AstmDelimiters): string[] {
  return ['H', '', ...header.slice(5).split(d.field).slice(1)];
}

function parseHeader(f: AstmFieldReader, delimiters: AstmDelimiters): AstmMessage['header'] {
  const sender = f.components(5);
  return {
    delimiters,
    messageControlId: f.optional(3),
    sender: { name: sender[0] ?? '', components: sender },
    receiverId: f.optional(10),
    processingId: f.optional(12),
    version: f.optional(13),
    timestamp: f.optional(14),
  };
}

function addRecord(walk: Walk, type: string, f: AstmFieldReader): void {
  const m = walk.message;
  const sequence = f.optional(2);
  switch (type) {
    case 'P':
      addPeople(m, f, PATIENT_PEOPLE);
      m.patients.push(parsePatient(f, sequence));
      walk.last = 'patient';
      break;
    case 'O':
      addPeople(m, f, ORDER_PEOPLE);
      m.orders.push(parseOrder(f, sequence, m.patients.length - 1));
      walk.last = 'order';
      break;
    case 'R':
      addPeople(m, f, RESULT_PEOPLE);
      m.results.push(parseResult(f, sequence, currentOrder(m), m.patients.length - 1));
      walk.last = 'result';
      break;
    case 'C':
      addComment(walk, f, sequence);
      break;
    case 'Q':
      m.queries.push(parseQuery(f, sequence));
      break;
    case 'L':
      m.terminator = { sequence, code: f.optional(3) };
      break;
    default:
      m.manufacturer += 1;
  }
}

/** P.3–P.7 ids and names, P.13 phone, P.14 attending physician (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)). */
const PATIENT_PEOPLE = [3, 4, 5, 6, 7, 13, 14];
/** O.3 specimen id, O.11 collector, O.17 ordering physician, O.18 physician's phone. */
const ORDER_PEOPLE = [3, 11, 17, 18];
/** R.11 operator. */
const RESULT_PEOPLE = [11];

/** The components of people fields, for the de-identification of free text only (never stored). */
function addPeople(m: AstmMessage, f: AstmFieldReader, fields: readonly number[]): void {
  for (const n of fields) {
    for (const rep of f.repeats(n)) for (const c of rep) if (c !== '') m.people.push(c);
  }
}

/** P record: only P.3/P.4 (for tokenization) and the names of the other non-empty fields. */
function parsePatient(f: AstmFieldReader, sequence: string | null): AstmPatient {
  const practice = f.optional(3);
  const lab = f.optional(4);
  const presentFields: AstmPatientField[] = [];
  for (const [n, name] of PATIENT_FIELDS) if (f.has(n)) presentFields.push(name);
  if (practice !== null)
    return { sequence, patientId: practice, patientIdField: 'P.3', presentFields, comments: [] };
  return {
    sequence,
    patientId: lab,
    patientIdField: lab === null ? null : 'P.4',
    presentFields,
    comments: [],
  };
}

function testId(components: string[]): AstmTestId {
  const code = components.slice(3).find((c) => c !== '') ?? components.find((c) => c !== '') ?? '';
  return { code, components };
}

function parseOrder(f: AstmFieldReader, sequence: string | null, patientIndex: number): AstmOrder {
  return {
    sequence,
    patientIndex: patientIndex < 0 ? null : patientIndex,
    specimenId: f.optional(3),
    instrumentSpecimenId: f.components(4),
    testIds: f.repeats(5).map(testId),
    priority: f.optional(6),
    actionCode: f.optional(12),
    reportType: f.optional(26),
    comments: [],
  };
}

/**
 * The index of the O record an R belongs to: the latest O, if it comes after the latest P (an R
 * after a P without an O of its own is that patient's, never the order of the patient before), else -1.
 */
function currentOrder(m: AstmMessage): number {
  const last = m.orders.length - 1;
  const order = m.orders[last];
  return order !== undefined && (order.patientIndex ?? -1) === m.patients.length - 1 ? last : -1;
}

function parseResult(
  f: AstmFieldReader,
  sequence: string | null,
  orderIndex: number,
  patientIndex: number,
): AstmResult {
  return {
    sequence,
    orderIndex: orderIndex < 0 ? null : orderIndex,
    patientIndex: patientIndex < 0 ? null : patientIndex,
    testId: testId(f.components(3)),
    value: f.text(4),
    units: f.optional(5),
    referenceRange: f.optional(6),
    abnormalFlags: f.repeats(7).map((rep) => rep.join('')),
    status: f.optional(9),
    startedAt: f.optional(12),
    completedAt: f.optional(13),
    instrumentId: f.optional(14),
    comments: [],
  };
}

function addComment(walk: Walk, f: AstmFieldReader, sequence: string | null): void {
  const m = walk.message;
  const comment: AstmComment = {
    sequence,
    source: f.optional(3),
    text: f
      .components(4)
      .filter((c) => c !== '')
      .join(' '),
    type: f.optional(5),
    attachedTo: walk.last,
  };
  m.comments.push(comment);
  if (walk.last === 'result') m.results.at(-1)?.comments.push(comment);
  if (walk.last === 'order') m.orders.at(-1)?.comments.push(comment);
  if (walk.last === 'patient') m.patients.at(-1)?.comments.push(comment);
}

function parseQuery(f: AstmFieldReader, sequence: string | null): AstmQuery {
  const startingRange = f.components(3);
  const specimenId = [startingRange[1], startingRange[2]].find((c) => c !== undefined && c !== '') ?? null;
  return {
    sequence,
    startingRange,
    specimenId,
    testIds: f.repeats(5).map(testId),
    statusCode: f.optional(13),
  };
}
