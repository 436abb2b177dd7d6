import { EthernetAdapter } from '@attache/adapter-ethernet';
import { createModbusAdapters } from '@attache/adapter-modbus';
import { Rs232Adapter } from '@attache/adapter-rs232';
import type {
  AttacheConfig,
  DeviceAdapter,
  DeviceConfig,
  Logger,
  ModbusDeviceConfig,
  ReadingSink,
} from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';

/** Builds one device's adapter; its config issues (a bad allow-list or pattern) get the device's path. */
function withDevicePath(device: DeviceConfig, index: number, build: () => DeviceAdapter): DeviceAdapter {
  try {
    return build();
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) throw err;
    const issues = err.issues.map((issue) => ({ ...issue, path: `/devices/${index}${issue.path}` }));
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `device ${device.id}: ${err.message}`, { issues });
  }
}

/**
 * Builds the adapters of every configured device, in config order; all deliver to the same sink.
 * `config` comes from `loadConfig`, which has checked the Modbus register maps. Throws a GatewayError
 * `ATTACHE_CONFIG_INVALID` (with the device's path) for a bad allow-list or line pattern.
 */
export function createAdapters(config: AttacheConfig, sink: ReadingSink, logger: Logger): DeviceAdapter[] {
  // Devices on one Modbus bus share it, so they are built together, then handed out in config order.
  const modbus = createModbusAdapters({
    devices: config.devices.filter((d): d is ModbusDeviceConfig => d.adapter === 'modbus'),
    profiles: config.modbusProfiles,
    sink,
    logger,
  });
  return config.devices.map((device, index) => {
    if (device.adapter === 'rs232') {
      return withDevicePath(device, index, () => new Rs232Adapter({ device, sink, logger }));
    }
    if (device.adapter === 'ethernet') {
      return withDevicePath(device, index, () => new EthernetAdapter({ device, sink, logger }));
    }
    return modbus.shift() as DeviceAdapter;
  });
}
