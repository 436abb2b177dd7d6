export { ChangeFilter } from './change-filter.js';
export { busKey, checkModbusConfig, type ModbusConfigParts } from './check-config.js';
export { type CreateModbusAdaptersOptions, createModbusAdapters } from './create.js';
export { type DecodedValue, type DecodeSpec, decodeRegisters, reorder } from './decode.js';
export { modbusExceptionName } from './exceptions.js';
export { ModbusAdapter, type ModbusAdapterOptions, type ModbusAdapterStatus } from './modbus-adapter.js';
export {
  ModbusClient,
  type ModbusClientOptions,
  type ReadRequest,
  type ReadResponse,
  type ReconnectOptions,
  rtuGapMs,
} from './modbus-client.js';
export { type BlockResult, buildObservations, type OutOfRangeHandler } from './observations.js';
export {
  maxBitsPerRead,
  maxPerRead,
  maxRegistersPerRead,
  type PlannedValue,
  planReads,
  type ReadBlock,
} from './plan.js';
export { type ReadRegistersOptions, type ReadRegistersResult, readRegisters } from './read-registers.js';
export {
  type ByteOrder,
  locate,
  type ModbusTable,
  type RegisterLocation,
  type RegisterType,
  registerCount,
  registerPath,
  resolveRef,
} from './register-map.js';
