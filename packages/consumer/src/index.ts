export {
  type ConsumedEvent,
  type ConsumedRecord,
  type ConsumerOptions,
  type Delivery,
  type GapReport,
  MessageConsumer,
  type Retime,
} from './consumer.js';
export { ConsumerError, type ConsumerErrorCode, isConsumerError, type MessageIssue } from './errors.js';
export type { BootCorrection, GatewayState, OpenGap } from './gateway-state.js';
export type { AttacheRecord, BatchMessage, ClockProvenance, Observation } from './generated/batch.js';
export type {
  CompressedBatchMessage,
  GatewayEvent,
  GatewayEventDetail,
  GatewayStateMessage,
} from './generated/uplink-messages.js';
export { displayUnit, type MdcTerm, mdcTerm, type NamedObservation, nameObservation } from './names.js';
export { type ParsedMessage, type ParseOptions, parseMessage, SUPPORTED_SCHEMA_VERSIONS } from './parse.js';
export { MemoryStateStore, type StateStore, type VersionedState } from './state-store.js';
export { applyCorrection, type TimedAt, type TimeSource, timeOf } from './time.js';
