export {
  buildHl7Ack,
  type Hl7AckCode,
  type Hl7AckError,
  type Hl7AckOptions,
  hl7AckFrame,
  hl7Timestamp,
} from './hl7-ack.js';
export { hl7Time, mdilToMdc, obxCode, obxObservation, obxUnit } from './hl7-obx.js';
export {
  decodeHl7,
  decodeHl7Bytes,
  encodeHl7,
  type Hl7Delimiters,
  type Hl7Message,
  type Hl7ParseProblem,
  Hl7Segment,
  hl7Encoding,
  parseHl7Message,
  parseProblem,
  reencodeHl7Field,
} from './hl7-parser.js';
export {
  type Hl7Interpretation,
  type Hl7InterpretOptions,
  type Hl7ReadingParts,
  interpretHl7,
} from './hl7-reading.js';
export { Hl7Driver, type Hl7DriverOptions, Hl7Session, maxPendingAcks } from './hl7-session.js';
export {
  encodeMllp,
  MLLP_END,
  MLLP_START,
  type MllpEvent,
  MllpFramer,
  type MllpFramerOptions,
} from './mllp-framer.js';
