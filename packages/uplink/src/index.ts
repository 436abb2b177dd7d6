export { type Batch, BatchReader, type BatchReaderOptions, contentTypes } from './batch-reader.js';
export { IotCoreUplink, type IotCoreUplinkOptions, type OpenWindowOptions } from './iot-core-uplink.js';
export * from './policy.js';
