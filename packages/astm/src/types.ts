import type { AstmDelimiters } from './fields.js';

/** A universal test ID (R.3, O.5, Q.5). */
export interface AstmTestId {
  /** First non-empty component from the 4th on (the manufacturer's local code), else the first non-empty. */
  code: string;
  /** All components, decoded (`^^^GLU` → `['', '', '', 'GLU']`). */
  components: string[];
}

/** The H record. */
export interface AstmHeader {
  delimiters: AstmDelimiters;
  /** H.3 message control ID. */
  messageControlId: string | null;
  /** H.5 sender: the instrument's identity (`name^serial^version`, vendor-specific). */
  sender: { name: string; components: string[] };
  /** H.10 receiver ID. */
  receiverId: string | null;
  /** H.12 processing ID: P production, T training, D debug, Q QC. */
  processingId: string | null;
  /** H.13 version (`E1394-97`, `LIS2-A2`, `1`). */
  version: string | null;
  /** H.14 date/time of the message, as sent (`YYYYMMDDHHMMSS`). */
  timestamp: string | null;
}

/** Names of the P fields whose presence is reported (their content is never copied). */
export type AstmPatientField =
  | 'patientId3'
  | 'name'
  | 'mothersMaidenName'
  | 'birthdate'
  | 'sex'
  | 'race'
  | 'address'
  | 'phone'
  | 'attendingPhysician'
  | 'height'
  | 'weight'
  | 'diagnosis'
  | 'admissionDates'
  | 'location';

/** E1394 field numbers of the P fields reported in `presentFields`. */
export const PATIENT_FIELDS: ReadonlyArray<readonly [number, AstmPatientField]> = [
  [5, 'patientId3'],
  [6, 'name'],
  [7, 'mothersMaidenName'],
  [8, 'birthdate'],
  [9, 'sex'],
  [10, 'race'],
  [11, 'address'],
  [13, 'phone'],
  [14, 'attendingPhysician'],
  [17, 'height'],
  [18, 'weight'],
  [19, 'diagnosis'],
  [24, 'admissionDates'],
  [26, 'location'],
];

/**
 * A P record, reduced on purpose: only the patient ID (an MRN, to be tokenized before storage) and
 * the names of the other fields present. Names, birthdate, address and the rest are never copied.
 */
export interface AstmPatient {
  /** P.2 sequence number. */
  sequence: string | null;
  /** P.3 practice-assigned ID, else P.4 lab-assigned ID, else null. */
  patientId: string | null;
  /** Which field `patientId` came from. */
  patientIdField: 'P.3' | 'P.4' | null;
  /** The other non-empty P fields, by name, in field order. */
  presentFields: AstmPatientField[];
  /** C records that follow this P record (before its first O): about this patient only. */
  comments: AstmComment[];
}

/** A C record. Its text is free text that may carry names: kept only de-identified, and only when turned on. */
export interface AstmComment {
  sequence: string | null;
  /** C.3 source: I instrument, L LIS. */
  source: string | null;
  /** C.4 text, non-empty components joined by a space. */
  text: string;
  /** C.5 type: G generic, I instrument flag. */
  type: string | null;
  /** The record the comment follows. */
  attachedTo: 'message' | 'patient' | 'order' | 'result';
}

/** An O record. */
export interface AstmOrder {
  sequence: string | null;
  /** Index in `patients` of the P record above it, or null. */
  patientIndex: number | null;
  /** O.3 specimen ID (the barcode, often the LIS accession). */
  specimenId: string | null;
  /** O.4 instrument specimen ID components (rack^position). */
  instrumentSpecimenId: string[];
  /** O.5 universal test IDs (repeats). */
  testIds: AstmTestId[];
  /** O.6 priority: S stat, R routine. */
  priority: string | null;
  /** O.12 action code: A add, N new, Q QC, C cancel. */
  actionCode: string | null;
  /** O.26 report type: O order, F final, Q response to query, X cannot be done. */
  reportType: string | null;
  /** C records that follow this O record. */
  comments: AstmComment[];
}

/** An R record. R.11 (operator name) is not copied (only into the message's `people`). */
export interface AstmResult {
  sequence: string | null;
  /** Index in `orders` of the O record above it under the same P record, or null. */
  orderIndex: number | null;
  /** Index in `patients` of the P record above it, or null. */
  patientIndex: number | null;
  /** R.3 universal test ID. */
  testId: AstmTestId;
  /** R.4 value: its first component, decoded ('' when empty). */
  value: string;
  /** R.5 units. */
  units: string | null;
  /** R.6 reference range, as sent. */
  referenceRange: string | null;
  /** R.7 abnormal flags (L, H, LL, HH, N, A, <, >), one per repeat. */
  abnormalFlags: string[];
  /** R.9 result status: F final, C correction, P preliminary, X cannot be done, W warning. */
  status: string | null;
  /** R.12 test started, as sent (`YYYYMMDDHHMMSS`, instrument local time). */
  startedAt: string | null;
  /** R.13 test completed, as sent. */
  completedAt: string | null;
  /** R.14 instrument ID. */
  instrumentId: string | null;
  /** C records that follow this R record. */
  comments: AstmComment[];
}

/** A Q record (request information). */
export interface AstmQuery {
  sequence: string | null;
  /** Q.3 starting range ID components (`patientID^specimenID…`). */
  startingRange: string[];
  /** The 2nd component of Q.3, else its 3rd (analyzers differ), else null. */
  specimenId: string | null;
  /** Q.5 universal test IDs (`^^^ALL`). */
  testIds: AstmTestId[];
  /** Q.13 request information status code (O request orders). */
  statusCode: string | null;
}

/** One parsed E1394 message. */
export interface AstmMessage {
  header: AstmHeader;
  patients: AstmPatient[];
  orders: AstmOrder[];
  results: AstmResult[];
  /** Every C record, in order (also attached to their order or result). */
  comments: AstmComment[];
  queries: AstmQuery[];
  /**
   * The components of the message's people fields (P.3–P.7, P.13, P.14, O.3, O.11, O.17, O.18,
   * R.11: ids, names, phones of the patient, relatives, physicians, collectors and operators), kept
   * only so that comments can be de-identified; never part of a reading's stored content.
   */
  people: string[];
  /** Number of M (manufacturer) and S (scientific) records; their content is not interpreted. */
  manufacturer: number;
  /** The L record: L.3 termination code (N normal, I no information, Q query error…); null when absent. */
  terminator: { sequence: string | null; code: string | null } | null;
}
