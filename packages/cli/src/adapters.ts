import { Rs232Adapter } from '@attache/adapter-rs232';
import type { AttacheConfig, DeviceAdapter, DeviceConfig, Logger, ReadingSink } from '@attache/core';
import { GatewayError } from '@attache/core';

function unsupported(device: DeviceConfig, index: number): GatewayError {
  return new GatewayError(
    'ATTACHE_CONFIG_INVALID',
    `device ${device.id}: this build cannot run ${device.adapter} devices with this format`,
    { issues: [{ path: `/devices/${index}`, message: 'adapter or format not supported by this build' }] },
  );
}

/**
 * Builds the adapters of every configured device, in config order; all deliver to the same sink.
 * Throws a GatewayError `ATTACHE_CONFIG_INVALID` for a device this build cannot run.
 */
export function createAdapters(config: AttacheConfig, sink: ReadingSink, logger: Logger): DeviceAdapter[] {
  return config.devices.map((device, index) => {
    if (device.adapter === 'rs232' && device.format.kind === 'kv-line') {
      return new Rs232Adapter({ device: { ...device, format: device.format }, sink, logger });
    }
    throw unsupported(device, index);
  });
}
