export {
  aclRules,
  type FleetIotPolicies,
  type IotPolicyDocument,
  type IotPolicyStatement,
  iotPoliciesFile,
  loadIotPolicies,
  type MosquittoAclOptions,
  mosquittoAcl,
} from './acl.js';
export { type CbcMessageOptions, cbcMessage } from './astm-cbc.js';
export {
  type AstmSenderFaults,
  type AstmSenderOptions,
  AstmSenderSimulator,
  type AstmSendResult,
} from './astm-sender.js';
export { type BaudGateOptions, BaudGateRelay } from './baud-gate.js';
export {
  type ClientIdentity,
  type MosquittoBroker,
  type MosquittoOptions,
  type PublishOptions,
  publishMessage,
  type SubscribeOptions,
  startMosquitto,
  subscribeTopic,
  type TopicSubscriber,
  uplinkSettings,
} from './broker.js';
export { batchLines, eventLine, stateLine } from './dashboard.js';
export { FuzzMeter, fuzzParameters, liveBytes, type Mutation, mutate } from './fuzz.js';
export {
  IntelliVueMonitorSimulator,
  type IntelliVueMonitorSimulatorOptions,
  type IntelliVueSimAlert,
  type IntelliVueSimFaults,
  type IntelliVueSimNumeric,
} from './intellivue-monitor.js';
export {
  MedibusDeviceSimulator,
  type MedibusDeviceSimulatorOptions,
  type MedibusSimAlarm,
  type MedibusSimFaults,
} from './medibus-device.js';
export {
  type MllpAck,
  type MllpSenderOptions,
  MllpSenderSimulator,
  type OruObservation,
  type OruR01Options,
  oruR01Message,
  parseMllpAck,
  pcd01VitalSigns,
  type VitalSignValues,
} from './mllp-sender.js';
export {
  type ModbusServedRequest,
  type ModbusServer,
  type ModbusServerOptions,
  type ModbusServerTransport,
  type ModbusServerValue,
  startModbusServer,
} from './modbus-server.js';
export { createTestPki, issueClientCertificate, type TestPki, type TestPkiOptions } from './pki.js';
export { getFreePort, isListening } from './ports.js';
export { openPtyPair, type PtyPair } from './pty.js';
export { type LogEntry, recordingLogger } from './recording-logger.js';
export {
  type DeviceProfile,
  LineDeviceSimulator,
  type LineDeviceSimulatorOptions,
  profileFormat,
} from './simulator.js';
