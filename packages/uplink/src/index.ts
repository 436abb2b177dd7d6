export { IotCoreUplink, type IotCoreUplinkOptions, type OpenWindowOptions } from './iot-core-uplink.js';
