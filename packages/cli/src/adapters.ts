import { EthernetAdapter } from '@attache/adapter-ethernet';
import { checkModbusConfig, createModbusAdapters } from '@attache/adapter-modbus';
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

function unsupported(device: DeviceConfig, index: number): GatewayError {
  return new GatewayError(
    'ATTACHE_CONFIG_INVALID',
    `device ${device.id}: this build cannot run ${device.adapter} devices with this format`,
    { issues: [{ path: `/devices/${index}`, message: 'adapter or format not supported by this build' }] },
  );
}

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
 * The Modbus devices' adapters, in config order; devices on one bus share it. Issues the schema
 * cannot catch (a missing profile, a bad register map) are refused with their config paths.
 */
function modbusAdapters(config: AttacheConfig, sink: ReadingSink, logger: Logger): DeviceAdapter[] {
  const issues = checkModbusConfig(config);
  if (issues.length > 0) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', 'the Modbus register maps have problems', { issues });
  }
  const devices = config.devices.filter((d): d is ModbusDeviceConfig => d.adapter === 'modbus');
  return createModbusAdapters({ devices, profiles: config.modbusProfiles, sink, logger });
}

/**
 * Builds the adapters of every configured device, in config order; all deliver to the same sink.
 * Throws a GatewayError `ATTACHE_CONFIG_INVALID` for a device this build cannot run.
 */
export function createAdapters(config: AttacheConfig, sink: ReadingSink, logger: Logger): DeviceAdapter[] {
  const modbus = modbusAdapters(config, sink, logger);
  return config.devices.map((device, index) => {
    if (device.adapter === 'rs232') {
      return withDevicePath(device, index, () => new Rs232Adapter({ device, sink, logger }));
    }
    if (device.adapter === 'ethernet') {
      return withDevicePath(device, index, () => new EthernetAdapter({ device, sink, logger }));
    }
    // Built above, in the same order: take the next one.
    const polled = device.adapter === 'modbus' ? modbus.shift() : undefined;
    if (polled !== undefined) return polled;
    throw unsupported(device, index);
  });
}
