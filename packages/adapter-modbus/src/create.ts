import type {
  Clock,
  Logger,
  ModbusDeviceConfig,
  ModbusProfile,
  RandomSource,
  ReadingSink,
} from '@attache/core';
import { GatewayError, nullLogger } from '@attache/core';
import { busKey, checkModbusConfig } from './check-config.js';
import { ModbusAdapter } from './modbus-adapter.js';
import { ModbusClient, type ReconnectOptions } from './modbus-client.js';

/** Options of {@link createModbusAdapters}. */
export interface CreateModbusAdaptersOptions {
  /** The Modbus devices, with the schema's defaults applied; one adapter each, in this order. */
  devices: readonly ModbusDeviceConfig[];
  /** The config's `modbusProfiles`. */
  profiles: Record<string, ModbusProfile>;
  /** Receives every reading; see ReadingSink. */
  sink: ReadingSink;
  /** Default `nullLogger`. */
  logger?: Logger;
  /** Back-off between connection attempts; default 500 ms doubling to 30 s, with `jitter`. */
  reconnect?: ReconnectOptions;
  /** Random spread of the bus reconnect and silent-device back-offs, 0-1. Default 0. */
  jitter?: number;
  /** Default `Math.random`. */
  random?: RandomSource;
  /** The poll schedules' timers and time. Default `systemClock`. */
  clock?: Clock;
}

/**
 * One adapter per device, in order; devices whose buses have the same key (`rtu:<path>`,
 * `tcp://host:port`) share one ModbusClient, so one transaction at a time runs on each bus.
 * Throws a GatewayError `ATTACHE_CONFIG_INVALID` with every issue checkModbusConfig finds (paths
 * index `devices` as given).
 */
export function createModbusAdapters(options: CreateModbusAdaptersOptions): ModbusAdapter[] {
  const { devices, profiles, sink } = options;
  const logger = options.logger ?? nullLogger;
  const issues = checkModbusConfig({ devices, modbusProfiles: profiles });
  if (issues.length > 0) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', `${issues.length} problem(s) in the Modbus config`, {
      issues,
    });
  }
  const clients = new Map<string, ModbusClient>();
  const jitter = {
    ...(options.jitter === undefined ? {} : { jitter: options.jitter }),
    ...(options.random ? { random: options.random } : {}),
  };
  return devices.map((device) => {
    const key = busKey(device.bus);
    let client = clients.get(key);
    if (client === undefined) {
      client = new ModbusClient({
        bus: device.bus,
        logger,
        reconnect: { initialMs: 500, maxMs: 30_000, ...jitter, ...options.reconnect },
      });
      clients.set(key, client);
    }
    const profile = profiles[device.profile] as ModbusProfile;
    return new ModbusAdapter({
      device,
      profile,
      client,
      sink,
      logger,
      ...jitter,
      ...(options.clock ? { clock: options.clock } : {}),
    });
  });
}
