import type {
  AttacheConfig,
  DeviceAdapter,
  DeviceConfig,
  Logger,
  ModbusDeviceConfig,
  ProtocolDriver,
  ReadingSink,
  Rs232DeviceConfig,
  SinkRefusing,
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
 * Builds the adapters of every configured device, in config order; all deliver to the same sink,
 * and those that can say "busy" to a device ask `refusing` first (the cache's `refusing`).
 * Only the adapter packages the config uses are loaded (each pulls in its native or protocol
 * library), which keeps the gateway's start short on a Pi. `config` comes from `loadConfig`, which
 * has checked the Modbus register maps. Rejects with a GatewayError `ATTACHE_CONFIG_INVALID` (with
 * the device's path) for a bad allow-list or line pattern.
 */
export async function createAdapters(
  config: AttacheConfig,
  sink: ReadingSink,
  logger: Logger,
  refusing: SinkRefusing,
): Promise<DeviceAdapter[]> {
  // Every reconnect back-off is spread at random, so boxes that lost the same thing do not retry in step.
  const jitter = config.gateway.retryJitter;
  const uses = (kind: DeviceConfig['adapter']) => config.devices.some((d) => d.adapter === kind);
  const polled = (kind: string) =>
    config.devices.some((d) => d.adapter === 'rs232' && d.format.kind === kind);
  const [rs232, ethernet, modbus, medibus, intellivue] = await Promise.all([
    uses('rs232') ? import('@attache/adapter-rs232') : undefined,
    uses('ethernet') ? import('@attache/adapter-ethernet') : undefined,
    uses('modbus') ? import('@attache/adapter-modbus') : undefined,
    polled('medibus') ? import('@attache/medibus') : undefined,
    polled('intellivue') ? import('@attache/intellivue') : undefined,
  ]);
  // Devices that must be asked run their protocol's driver on the serial port.
  const driver = ({ format }: Rs232DeviceConfig): { driver: ProtocolDriver } | undefined => {
    if (format.kind === 'medibus' && medibus) return { driver: new medibus.MedibusDriver({ format }) };
    if (format.kind === 'intellivue' && intellivue)
      return { driver: new intellivue.IntelliVueDriver({ format }) };
    return undefined;
  };
  // Devices on one Modbus bus share it, so they are built together, then handed out in config order.
  const buses =
    modbus?.createModbusAdapters({
      devices: config.devices.filter((d): d is ModbusDeviceConfig => d.adapter === 'modbus'),
      profiles: config.modbusProfiles,
      sink,
      logger,
      jitter,
    }) ?? [];
  return config.devices.map((device, index) => {
    if (device.adapter === 'rs232' && rs232) {
      return withDevicePath(
        device,
        index,
        () => new rs232.Rs232Adapter({ device, sink, logger, refusing, jitter, ...driver(device) }),
      );
    }
    if (device.adapter === 'ethernet' && ethernet) {
      return withDevicePath(
        device,
        index,
        () => new ethernet.EthernetAdapter({ device, sink, logger, refusing, jitter }),
      );
    }
    return buses.shift() as DeviceAdapter;
  });
}
