export { AdapterBase, type AdapterBaseOptions, type AdapterEventMap } from './adapter-base.js';
export { Backoff, type BackoffOptions, type RandomSource, spread } from './backoff.js';
export { monotonicMs, systemClock } from './clock.js';
export type {
  AdapterState,
  AdapterStatus,
  AlarmDraft,
  BacklogStats,
  CodedObservation,
  DeviceAdapter,
  DeviceField,
  DeviceReading,
  InstrumentIdentity,
  Outbox,
  PageOptions,
  PageRoom,
  PatientTokenizer,
  ReadingSink,
  RecordDraft,
  RecordPage,
  SinkRefusing,
  StoredRecord,
  WindowResult,
} from './contract.js';
export { parseDecimal } from './decimal.js';
export {
  backtracksBeforeLinear,
  devicePattern,
  devicePatternProblem,
  useLinearRegExpFallback,
} from './device-pattern.js';
export { DeviceReport, type LastError, type Presence } from './device-report.js';
export {
  exists,
  mkdirDurably,
  readJson,
  removeDurably,
  syncDir,
  type WriteDurablyOptions,
  writeDurably,
} from './durable-fs.js';
export {
  type ConfigIssue,
  type ErrorCode,
  GatewayError,
  type GatewayErrorOptions,
  isGatewayError,
} from './errors.js';
export type { BatchMessage } from './generated/batch.js';
export type {
  AstmFormat,
  AttacheConfig,
  AttacheConfigInput,
  CacheConfig,
  CodeMapping,
  DeviceConfig,
  DeviceConfigInput,
  EthernetDeviceConfig,
  FieldMapping,
  FilesConfig,
  FilesUploadConfig,
  FolderSourceConfig,
  GatewayConfig,
  Hl7MllpFormat,
  IntelliVueFormat,
  IntelliVuePoll,
  JobsConfig,
  KvLineFormat,
  LogConfig,
  MedibusFormat,
  MedibusPoll,
  ModbusBus,
  ModbusChangeFilter,
  ModbusDeviceConfig,
  ModbusProfile,
  ModbusRegister,
  ModbusRtuBus,
  ModbusTcpBus,
  ProvisioningConfig,
  RegexLineFormat,
  Rs232DeviceConfig,
  SerialFormat,
  SerialPortConfig,
  StreamFormat,
  TcpEndpoint,
  TechnicianConfig,
  UplinkConfig,
  UsbSourceConfig,
  WindowConfig,
} from './generated/config.js';
export type { Alarm, AttacheRecord, ClockProvenance, DeviceCode, Observation } from './generated/record.js';
export type {
  CompressedBatchMessage,
  GatewayEvent,
  GatewayEventDetail,
  GatewayReportedState,
  GatewayStateMessage,
  SettingsOutcome,
  ShadowDesiredSettings,
  WindowSummary,
} from './generated/uplink-messages.js';
export { type LogFn, type Logger, nullLogger } from './logger.js';
export { ManualClock } from './manual-clock.js';
export type {
  ByteLink,
  Clock,
  ClockTimer,
  ProtocolDriver,
  ProtocolSession,
  SessionContext,
  SessionCounts,
  SessionReport,
} from './session.js';
export {
  checkBatch,
  checkCompressedBatch,
  checkEvent,
  checkRecord,
  checkState,
  validateConfig,
} from './validate.js';
