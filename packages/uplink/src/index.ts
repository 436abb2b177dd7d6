export { type Batch, BatchReader, type BatchReaderOptions, contentTypes } from './batch-reader.js';
export { type ClaimProvisioningOptions, provisionByClaim } from './fleet-provisioning.js';
export { IotCoreUplink, type IotCoreUplinkOptions, type OpenWindowOptions } from './iot-core-uplink.js';
export * from './policy.js';
export type { WindowProvisioning } from './upload-window.js';
