export { BusyLog } from './busy-log.js';
export { astmChecksum } from './control.js';
export { type AstmDelimiters, DEFAULT_DELIMITERS, decodeEscapes, encodeEscapes } from './fields.js';
export { astmLocalTimestamp, buildNoInformationReply, frameAstmRecords } from './host-query.js';
export {
  type AstmAction,
  AstmReceiver,
  type AstmReceiverEvent,
  type AstmReceiverOptions,
  type AstmReceiverState,
} from './low-level.js';
export {
  type AstmReadingOptions,
  type AstmReadingParts,
  astmObservation,
  astmRawHeader,
  astmReadings,
  astmTime,
} from './readings.js';
export { parseAstmMessage } from './records.js';
export { AstmReplySender } from './reply-sender.js';
export {
  AstmDriver,
  type AstmDriverOptions,
  AstmSession,
  astmMaxHeldBytes,
  astmTickMs,
} from './session.js';
export type {
  AstmComment,
  AstmHeader,
  AstmMessage,
  AstmOrder,
  AstmPatient,
  AstmPatientField,
  AstmQuery,
  AstmResult,
  AstmTestId,
} from './types.js';
