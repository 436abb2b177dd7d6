import { type AstmMessage, type AstmResult, parseAstmMessage } from '@attache/astm';
import type { AstmFormat, CodedObservation, DeviceReading, InstrumentIdentity } from '@attache/core';

/** The parts of a reading an ASTM message gives. */
export type AstmReadingParts = Pick<
  DeviceReading,
  | 'protocol'
  | 'fields'
  | 'markers'
  | 'raw'
  | 'observations'
  | 'patientId'
  | 'specimenId'
  | 'instrument'
  | 'deviceTime'
  | 'event'
>;

const numeric = /^[+-]?(\d+\.?\d*|\.\d+)$/;

/** R.9 (E1394) to the record's status. */
const statuses: Record<string, CodedObservation['status']> = {
  F: 'valid',
  C: 'valid',
  P: 'questionable',
  W: 'questionable',
  X: 'unavailable',
};

/** `YYYYMMDDHHMMSS` (or `YYYYMMDDHHMM`) to `YYYY-MM-DDTHH:MM:SS`; undefined otherwise. */
function astmTime(value: string | null): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?$/.exec(value ?? '');
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}` : undefined;
}

function observation(result: AstmResult, format: AstmFormat): CodedObservation {
  const status = statuses[(result.status ?? 'F').toUpperCase()] ?? 'valid';
  const text = result.value.trim();
  let value: number | string | null = text === '' ? null : text;
  if (status === 'unavailable') value = null;
  else if (numeric.test(text)) value = Number(text);
  const o: CodedObservation = {
    code: result.testId.code,
    system: 'LOCAL',
    value,
    unit: result.units ?? '',
    status: value === null ? 'unavailable' : status,
    source: result.testId.code.slice(0, 64),
  };
  const observedAt = astmTime(result.completedAt) ?? astmTime(result.startedAt);
  if (observedAt !== undefined) o.observedAt = observedAt;
  if (result.referenceRange) o.referenceRange = result.referenceRange;
  if (result.abnormalFlags.length > 0) o.abnormalFlags = result.abnormalFlags;
  if (format.comments && result.comments.length > 0) o.comments = result.comments.map((c) => c.text);
  return o;
}

function instrument(message: AstmMessage): InstrumentIdentity | undefined {
  const [name, serial, version] = message.header.sender.components;
  const identity: InstrumentIdentity = {};
  if (name) identity.name = name.slice(0, 64);
  if (serial) identity.serial = serial.slice(0, 64);
  if (version) identity.version = version.slice(0, 64);
  return Object.keys(identity).length > 0 ? identity : undefined;
}

/**
 * An ASTM E1394 message (its records joined by CR) as reading parts: each R record an observation,
 * the patient ID (P.3/P.4) and the specimen ID (O.3) for the normalizer to tokenize, the instrument
 * from H.5, `deviceTime` from H.14. A message with Q records is an `astm.query` event. `raw` is the H
 * record only (the P record may carry names). Throws the GatewayError `ATTACHE_MALFORMED` of
 * `parseAstmMessage`.
 */
export function astmReading(text: string, format: AstmFormat): AstmReadingParts {
  const message = parseAstmMessage(text);
  const header = text.split(/[\r\n]/, 1)[0] ?? '';
  const parts: AstmReadingParts = {
    protocol: 'astm',
    fields: [],
    markers: [],
    raw: Buffer.from(header, 'latin1'),
    observations: message.results.map((r) => observation(r, format)),
  };
  if (message.queries.length > 0) {
    parts.event = { type: 'astm.query', detail: { queries: message.queries.length } };
  }
  const patientId = message.patients[0]?.patientId;
  if (patientId) parts.patientId = patientId;
  const specimenId = message.orders[0]?.specimenId ?? message.queries[0]?.specimenId;
  if (specimenId) parts.specimenId = specimenId;
  const identity = instrument(message);
  if (identity !== undefined) parts.instrument = identity;
  const time = astmTime(message.header.timestamp);
  if (time !== undefined) parts.deviceTime = time;
  return parts;
}
