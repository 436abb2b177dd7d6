import type { Alarm, AttacheRecord, DeviceCode, Observation } from './generated/record.js';

/** One field as the device sent it, before mapping: untrusted text. */
export interface DeviceField {
  /** The device's key, e.g. `SPO2`. */
  name: string;
  /** The value as sent, e.g. `098%` or `---`. */
  value: string;
}

/**
 * An observation the protocol codes itself (an ASTM R record, an HL7 OBX segment, a Modbus register
 * read through its map). The normalizer maps `unit` to UCUM and `code` through the device's `codes`.
 */
export interface CodedObservation {
  /** The code as the device sent it: an MDC reference id, a LOINC code, or the device's own test code. */
  code: string;
  /** The system of `code` as far as the adapter can tell; the device's `codes` map may change it. */
  system: Observation['system'];
  /** MDC numeric code, when known. */
  mdc?: number;
  /** A number for numeric values, text for coded or textual ones, null when the device sent none. */
  value: number | string | null;
  /** The unit as the device spelled it (`10^3/uL`, `MDC_DIM_PERCENT`, `262688`); `1` or `` for none. */
  unit: string;
  status: Observation['status'];
  /** The device's own name for the value (test code, OBX-3 text, register name). */
  source?: string;
  referenceRange?: string;
  abnormalFlags?: string[];
  /** When the device says it measured the value, in the record's `deviceTime` form. */
  observedAt?: string;
  /** OBX-4 containment, or a register address. */
  path?: string;
  /**
   * Free text attached to this value (ASTM C records after the R, HL7 NTE after the OBX), as sent.
   * The normalizer keeps it only when the device's config turns free text on, and de-identifies it.
   */
  comments?: string[];
  /** The value is free text (HL7 OBX of type TX, FT or ST): kept and de-identified only with free text on. */
  freeText?: boolean;
  /** The device's own code, when the adapter converted it (Philips MDIL `0002-4bb8` to MDC 150456). */
  deviceCode?: DeviceCode;
}

/** An alarm as an adapter read it; the normalizer maps its parameter and de-identifies its text. */
export interface AlarmDraft extends Omit<Alarm, 'parameter' | 'text'> {
  parameter?: CodedObservation;
  /** The alarm text as sent: kept only with free text on, and then de-identified. */
  text?: string;
}

/** The device's identity as it reports it (ASTM H record, HL7 MSH-3 / OBX-18). */
export type InstrumentIdentity = NonNullable<AttacheRecord['instrument']>;

/** What an adapter hands to its sink for every frame it read. May contain patient data: never log it. */
export interface DeviceReading {
  deviceId: string;
  adapter: AttacheRecord['adapter'];
  protocol: string;
  /** Wall-clock time of arrival, ms since the epoch (`Date.now()`). */
  receivedAt: number;
  /** CLOCK_MONOTONIC time of arrival, ms since boot. */
  monotonicMs: number;
  /** The fields, in the order the device sent them. */
  fields: DeviceField[];
  /** Bare tokens without a value (e.g. `*`, `B`). */
  markers: string[];
  /** The device's own timestamp in the record's `deviceTime` form, when it sent one. */
  deviceTime?: string;
  /** The frame as received, without its delimiter. */
  raw: Buffer;
  /**
   * Observations the protocol coded (ASTM, HL7, Modbus). When present, `fields` is not mapped through
   * the device's `format.fields`.
   */
  observations?: CodedObservation[];
  /** The patient identifier as sent (ASTM P, HL7 PID-3): the normalizer replaces it by a token. */
  patientId?: string;
  /** The specimen (accession) id as sent: the normalizer replaces it by a token. */
  specimenId?: string;
  instrument?: InstrumentIdentity;
  /**
   * Free text about the order or report as a whole (ASTM C records after O, P or H; HL7 NTE after
   * OBR, ORC or PID), as sent: kept only with free text on, and then de-identified.
   */
  notes?: string[];
  /**
   * Names and identifiers of people the message itself carries (patient, relatives, clinicians,
   * operators; patient, visit and specimen ids), taken from its people fields only so that the
   * de-identification step can remove them from free text. Never stored, never logged.
   */
  people?: string[];
  /** Alarms the message reported (IHE PCD-04, vendor alert codes). */
  alarms?: AlarmDraft[];
  /** Set when the message is an event rather than a measurement (a host query, an ADT message). */
  event?: NonNullable<AttacheRecord['event']>;
  /**
   * Identifies the reading across re-sends (a hash of the ASTM message and the reading's index, of the
   * HL7 message): a device that never saw our acknowledgement sends it again, and the sink stores it
   * once. Omit for devices that never re-send.
   */
  idempotencyKey?: string;
}

/**
 * Where an adapter delivers readings. An adapter calls it in the order the device sent the
 * readings and may have several calls in flight; the sink stores readings in call order.
 * Resolves once the reading is durably stored: only then may the adapter acknowledge it to the device.
 * A reading whose `idempotencyKey` was stored recently resolves at once, without being stored again. Rejects with a GatewayError: `ATTACHE_MALFORMED`
 * when the reading cannot be normalized, `ATTACHE_CACHE_WRITE` (or another code) when it could not
 * be stored; the adapter then uses its protocol's refusal so the device keeps its data.
 */
export type ReadingSink = ((reading: DeviceReading) => Promise<void>) & {
  /**
   * Stores the readings of one device message (an HL7 message with several patients) all or none:
   * resolves once every one is durably stored, in one write, after the readings of earlier calls;
   * rejects as a single call does, and then none of them is stored. A reading whose
   * `idempotencyKey` was stored recently is not stored again. Optional: a sink without it gets the
   * readings one by one, and their keys keep a re-sent message from being stored twice.
   */
  all?: (readings: DeviceReading[]) => Promise<void>;
};

/**
 * True while the sink would refuse every reading (the cache is full and refuses). Adapters whose
 * protocol can say "busy" before the device transmits do so while it holds (an ASTM ENQ is answered
 * NAK), so the device keeps its data instead of sending a whole message only to have it refused.
 */
export type SinkRefusing = () => boolean;

export type AdapterState = 'starting' | 'connected' | 'disconnected' | 'stopped';

/** What `attache status` shows of one adapter. */
export interface AdapterStatus {
  deviceId: string;
  adapter: AttacheRecord['adapter'];
  state: AdapterState;
  /** When the state last changed (RFC 3339). */
  since: string;
  /** Frames received. */
  frames: number;
  /** Readings durably stored. */
  stored: number;
  /** Frames refused as malformed (framing or mapping). */
  malformed: number;
  /** Readings that could not be stored (the device was told to keep them, where its protocol can). */
  refused: number;
  /** Requests a polled device left unanswered (no valid reply in time); absent for devices that are not polled. */
  unanswered?: number;
  lastError?: { code: string; message: string };
}

/**
 * An attached device. `start()` resolves once the adapter is running; it keeps retrying a port
 * that is missing or fails, so a device plugged in later is picked up. `stop()` resolves once the
 * port is closed; readings whose sink call is in flight are awaited, never dropped.
 */
export interface DeviceAdapter {
  readonly deviceId: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): AdapterStatus;
  /**
   * The host saw a port appear (udev hot-plug): an adapter waiting to reconnect tries now, with its
   * back-off reset, and resolves true; false when it was not waiting. Optional: adapters without a
   * port to wait for do not implement it.
   */
  rescan?(): boolean;
}

/** A record before the cache gives it its sequence number. */
export type RecordDraft = Omit<AttacheRecord, 'seq'>;

/** A record as stored in the outbox: its seq and its JSON text, ready to be placed in a batch. */
export interface StoredRecord {
  seq: number;
  json: string;
}

/** Records of the outbox in seq order as one piece: their JSON texts joined by commas, as bytes. */
export interface RecordPage {
  firstSeq: number;
  lastSeq: number;
  /** How many records (seqs between `firstSeq` and `lastSeq` may be missing: removed, dropped). */
  count: number;
  /**
   * The records' JSON texts, UTF-8, joined by `,` (no brackets). When the page was read with
   * {@link PageRoom}, the JSON starts `room.before` bytes in and ends `room.after` bytes before the
   * end, those bytes being spaces for the reader to overwrite (a batch's header and closing brackets).
   */
  json: Uint8Array;
  /**
   * Set when `json` is a buffer the outbox reuses for a later page: called once nothing needs the
   * bytes any more (the message built in them was handed to the MQTT client, which copies it).
   */
  release?(): void;
}

/**
 * Bytes a page leaves free around its JSON (spaces), so that the reader can make its message in the
 * page's own buffer instead of copying the page into a new one.
 */
export interface PageRoom {
  before: number;
  after: number;
}

/** What `Outbox.readPage` reads: as `read`, and the room to leave around the JSON. */
export interface PageOptions {
  afterSeq: number;
  limit: number;
  /** Bytes of JSON and commas, the room not counted. */
  maxBytes: number;
  room?: PageRoom;
}

/** The cache seen from the uplink. */
export interface Outbox {
  /**
   * Records in seq order with seq > `afterSeq` (0 for the start), at most `limit`, and at most
   * `maxBytes` of JSON in all (always at least one record when any is there).
   */
  read(options: { afterSeq: number; limit: number; maxBytes: number }): Promise<StoredRecord[]>;
  /**
   * Optional, the same records as `read` as one {@link RecordPage}, at most `maxBytes` long with its
   * commas (always at least one record when any is there); null when none is. A batch is built from
   * it without handling each record, and it crosses a process boundary as one piece of bytes. With
   * `room`, that many spaces come before and after the JSON in `json` (see {@link RecordPage}).
   */
  readPage?(options: PageOptions): Promise<RecordPage | null>;
  /** Deletes the records with `firstSeq <= seq <= lastSeq`, durably. Only after the broker acknowledged them. */
  remove(firstSeq: number, lastSeq: number): Promise<void>;
}

/** Replaces a patient identifier by a random token; the same identifier always gets the same token. */
export interface PatientTokenizer {
  token(patientId: string): Promise<string>;
}

/** The backlog for `attache status`. */
export interface BacklogStats {
  records: number;
  /** Bytes of record JSON waiting. */
  bytes: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** `capturedAt` of the oldest waiting record. */
  oldestCapturedAt: string | null;
  /** The seq the next record will get. */
  nextSeq: number;
}

/** How a connectivity window ended, for `attache status` and `attache sync`. */
export interface WindowResult {
  openedAt: string;
  closedAt: string;
  /** `drained`: backlog empty. `deadline`: time ran out with backlog left. `failed`: see `error`. */
  outcome: 'drained' | 'deadline' | 'failed';
  /** Records acknowledged by the broker (and deleted from the cache). */
  records: number;
  /** Batch messages acknowledged. */
  messages: number;
  /** Payload bytes acknowledged. */
  bytes: number;
  firstSeq: number | null;
  lastSeq: number | null;
  error?: { code: string; message: string };
}
