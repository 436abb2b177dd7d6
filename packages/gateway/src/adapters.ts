import type {
  AdapterBase,
  AttacheConfig,
  DeviceAdapter,
  DeviceConfig,
  EthernetDeviceConfig,
  Logger,
  ModbusDeviceConfig,
  ProtocolDriver,
  ReadingSink,
  Rs232DeviceConfig,
  SinkRefusing,
} from '@attache/core';
import { GatewayError, isGatewayError } from '@attache/core';

/** A device's adapter as the gateway holds it: its `state` event and, for a port, `rescan()`. */
export type GatewayAdapter = AdapterBase & DeviceAdapter;

/** Builds one device's adapter; its config issues (a bad allow-list or pattern) get the device's path. */
async function withDevicePath<T>(
  device: DeviceConfig,
  index: number,
  build: () => T | Promise<T>,
): Promise<T> {
  try {
    return await build();
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) throw err;
    const issues = err.issues.map((issue) => ({ ...issue, path: `/devices/${index}${issue.path}` }));
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `device ${device.id}: ${err.message}`, { issues });
  }
}

/**
 * The protocol driver of a serial or TCP device, by its `format.kind`; only the protocol package the
 * format needs is loaded. Throws a GatewayError `ATTACHE_CONFIG_INVALID` for a bad line pattern.
 */
async function protocolDriver(device: Rs232DeviceConfig | EthernetDeviceConfig): Promise<ProtocolDriver> {
  const { format, adapter } = device;
  if (format.kind === 'astm') return new (await import('@attache/astm')).AstmDriver({ format, adapter });
  if (format.kind === 'hl7-mllp') return new (await import('@attache/hl7')).Hl7Driver({ format, adapter });
  // Devices that must be asked (a ventilator, a monitor): their driver polls them.
  if (format.kind === 'medibus') return new (await import('@attache/medibus')).MedibusDriver({ format });
  if (format.kind === 'intellivue')
    return new (await import('@attache/intellivue')).IntelliVueDriver({ format });
  // Lines are framed as the port or endpoint says (TCP without a delimiter: any line end).
  const { delimiter, maxLineBytes } = device.adapter === 'rs232' ? device.port : device.endpoint;
  return new (await import('@attache/line-formats')).LineDriver({
    format,
    adapter,
    ...(delimiter === undefined ? {} : { delimiter }),
    maxLineBytes,
  });
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
): Promise<GatewayAdapter[]> {
  // Every reconnect back-off is spread at random, so boxes that lost the same thing do not retry in step.
  const jitter = config.gateway.retryJitter;
  const uses = (kind: DeviceConfig['adapter']) => config.devices.some((d) => d.adapter === kind);
  const [rs232, ethernet, modbus] = await Promise.all([
    uses('rs232') ? import('@attache/adapter-rs232') : undefined,
    uses('ethernet') ? import('@attache/adapter-ethernet') : undefined,
    uses('modbus') ? import('@attache/adapter-modbus') : undefined,
  ]);
  // Devices on one Modbus bus share it, so they are built together, then handed out in config order.
  const buses =
    modbus?.createModbusAdapters({
      devices: config.devices.filter((d): d is ModbusDeviceConfig => d.adapter === 'modbus'),
      profiles: config.modbusProfiles,
      sink,
      logger,
      jitter,
    }) ?? [];
  const adapters: GatewayAdapter[] = [];
  for (const [index, device] of config.devices.entries()) {
    if (device.adapter === 'modbus') {
      adapters.push(buses.shift() as GatewayAdapter);
      continue;
    }
    const driver = await withDevicePath(device, index, () => protocolDriver(device));
    if (device.adapter === 'rs232' && rs232) {
      adapters.push(new rs232.Rs232Adapter({ device, driver, sink, logger, refusing, jitter }));
    } else if (device.adapter === 'ethernet' && ethernet) {
      const options = { device, driver, sink, logger, refusing, jitter };
      adapters.push(await withDevicePath(device, index, () => new ethernet.EthernetAdapter(options)));
    }
  }
  return adapters;
}
