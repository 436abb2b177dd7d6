import { Rs232Adapter } from '@attache/adapter-rs232';
import type { DeviceAdapter, DeviceConfig, Logger, ReadingSink } from '@attache/core';

/** Builds the adapter a configured device needs; every adapter delivers to the same sink. */
export function createAdapter(device: DeviceConfig, sink: ReadingSink, logger: Logger): DeviceAdapter {
  return new Rs232Adapter({ device, sink, logger });
}
