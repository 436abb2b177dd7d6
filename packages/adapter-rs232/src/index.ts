export { astmChecksum } from './astm/control.js';
export { type AstmDelimiters, DEFAULT_DELIMITERS, decodeEscapes, encodeEscapes } from './astm/fields.js';
export { buildNoInformationReply, frameAstmRecords } from './astm/host-query.js';
export {
  type AstmAction,
  AstmReceiver,
  type AstmReceiverEvent,
  type AstmReceiverOptions,
  type AstmReceiverState,
} from './astm/low-level.js';
export { parseAstmMessage } from './astm/records.js';
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
} from './astm/types.js';
export { type ParsedKvLine, parseKvLine } from './kv-line.js';
export { type LineFrame, LineFramer, type LineFramerOptions } from './line-framer.js';
export { Rs232Adapter, type Rs232AdapterOptions, type SerialPortClass } from './rs232-adapter.js';
