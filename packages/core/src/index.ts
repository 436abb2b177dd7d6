export { monotonicMs } from './clock.js';
export type {
  AdapterState,
  AdapterStatus,
  BacklogStats,
  DeviceAdapter,
  DeviceField,
  DeviceReading,
  Outbox,
  PatientTokenizer,
  ReadingSink,
  RecordDraft,
  StoredRecord,
  WindowResult,
} from './contract.js';
export {
  type ConfigIssue,
  type ErrorCode,
  GatewayError,
  type GatewayErrorOptions,
  isGatewayError,
} from './errors.js';
export type { BatchMessage } from './generated/batch.js';
export type {
  AttacheConfig,
  AttacheConfigInput,
  CacheConfig,
  DeviceConfig,
  FieldMapping,
  GatewayConfig,
  KvLineFormat,
  LogConfig,
  SerialPortConfig,
  UplinkConfig,
  WindowConfig,
} from './generated/config.js';
export type { AttacheRecord, ClockProvenance, Observation } from './generated/record.js';
export { type LogFn, type Logger, nullLogger } from './logger.js';
export { checkBatch, checkRecord, validateConfig } from './validate.js';
