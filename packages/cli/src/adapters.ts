import { Rs232Adapter } from '@attache/adapter-rs232';
import type { DeviceAdapter, DeviceConfig, Logger, ReadingSink } from '@attache/core';
import { GatewayError } from '@attache/core';

/** Builds the adapter a configured device needs; every adapter delivers to the same sink. */
export function createAdapter(device: DeviceConfig, sink: ReadingSink, logger: Logger): DeviceAdapter {
  if (device.adapter === 'rs232' && device.format.kind === 'kv-line') {
    return new Rs232Adapter({ device: { ...device, format: device.format }, sink, logger });
  }
  throw new GatewayError(
    'ATTACHE_CONFIG_INVALID',
    `device ${device.id}: this build cannot run ${device.adapter} devices with this format yet`,
    { issues: [{ path: `/devices/${device.id}`, message: 'adapter or format not supported by this build' }] },
  );
}
