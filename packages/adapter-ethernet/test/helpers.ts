import { connect, type Socket } from 'node:net';
import { AstmDriver } from '@attache/astm';
import { type EthernetDeviceConfig, type ProtocolDriver, validateConfig } from '@attache/core';
import { Hl7Driver } from '@attache/hl7';
import { LineDriver } from '@attache/line-formats';

export { type LogEntry as Entry, recordingLogger } from '@attache/devkit';

/** An Ethernet device config with the schema's defaults applied. */
export function ethernetDevice(device: Record<string, unknown>): EthernetDeviceConfig {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-test' },
    devices: [{ id: 'mon-1', adapter: 'ethernet', ...device }],
  });
  return config.devices[0] as EthernetDeviceConfig;
}

/** Polls until `done()` holds (30 s at most). */
export async function until(done: () => boolean, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A connected TCP client. */
export function connectTo(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('error', reject);
    socket.once('connect', () => resolve(socket));
  });
}

/** Resolves when `socket` closes. */
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

export { vitalSigns } from '../../hl7/test/helpers.js';

/** The device with the protocol driver the gateway would give it. */
export function withDriver(device: EthernetDeviceConfig): {
  device: EthernetDeviceConfig;
  driver: ProtocolDriver;
} {
  const { format } = device;
  const adapter = 'ethernet';
  if (format.kind === 'astm') return { device, driver: new AstmDriver({ format, adapter }) };
  if (format.kind === 'hl7-mllp') return { device, driver: new Hl7Driver({ format, adapter }) };
  const { delimiter, maxLineBytes } = device.endpoint;
  const framing = { maxLineBytes, ...(delimiter === undefined ? {} : { delimiter }) };
  return { device, driver: new LineDriver({ format, adapter, ...framing }) };
}
