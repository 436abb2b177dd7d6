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
import { devicePattern, GatewayError, isGatewayError } from '@attache/core';
import type { UpStore } from '@attache/files-up';

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
 * The driver of a device with `capture`: a {@link CaptureDriver} that turns the log it prints into
 * files of the gateway's up store, around the device's own driver (`alongside`) or alone (`instead`).
 * Files up is loaded only for such a device. Without a store (no files up running: a config reload
 * that added `files` takes effect at the next start) the device keeps its own driver, logged.
 */
async function withCapture(
  device: Rs232DeviceConfig | EthernetDeviceConfig,
  driver: () => Promise<ProtocolDriver>,
  store: UpStore | undefined,
  logger: Logger,
): Promise<ProtocolDriver> {
  const { capture } = device;
  if (capture === undefined) return driver();
  if (store === undefined) {
    logger.warn({ deviceId: device.id }, "capture needs files up running: the device's log is not captured");
    return driver();
  }
  const { CaptureDriver } = await import('@attache/files-up');
  const start = devicePattern(capture.start);
  return new CaptureDriver({
    store,
    start,
    ...(capture.end === undefined ? {} : { end: devicePattern(capture.end) }),
    idleMs: capture.idleSeconds * 1000,
    maxBytes: capture.maxBytes,
    ...(capture.mode === 'alongside' ? { inner: await driver() } : {}),
  });
}

/**
 * Builds the adapters of every configured device, in config order; all deliver to the same sink,
 * and those that can say "busy" to a device ask `refusing` first (the cache's `refusing`).
 * Only the adapter packages the config uses are loaded (each pulls in its native or protocol
 * library), which keeps the gateway's start short on a Pi. `config` comes from `loadConfig`, which
 * has checked the Modbus register maps. A device with `capture` delivers its logs to `files` (the
 * running gateway's up store). Rejects with a GatewayError `ATTACHE_CONFIG_INVALID` (with
 * the device's path) for a bad allow-list or line pattern.
 */
export async function createAdapters(
  config: AttacheConfig,
  sink: ReadingSink,
  logger: Logger,
  refusing: SinkRefusing,
  files?: UpStore,
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
    const driver = await withDevicePath(device, index, () =>
      withCapture(device, () => protocolDriver(device), files, logger),
    );
    if (device.adapter === 'rs232' && rs232) {
      adapters.push(new rs232.Rs232Adapter({ device, driver, sink, logger, refusing, jitter }));
    } else if (device.adapter === 'ethernet' && ethernet) {
      const options = { device, driver, sink, logger, refusing, jitter };
      adapters.push(await withDevicePath(device, index, () => new ethernet.EthernetAdapter(options)));
    }
  }
  return adapters;
}
