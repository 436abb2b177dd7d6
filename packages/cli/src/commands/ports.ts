import { realpath } from 'node:fs/promises';
import type { SerialPortEntry } from '@attache/adapter-rs232';
import { type AttacheConfig, isGatewayError } from '@attache/core';
import { controlRequest, gatewayPaths, loadConfig } from '@attache/gateway/client';
import type { CommandModule } from 'yargs';
import { type CommonArgs, fail, jsonOption, printable, readConfig, withConfig } from './common.js';

interface PortsArgs extends CommonArgs {
  linkDir?: string[];
  rescan?: boolean;
}

/** A port as listed, with the configured device that names it. */
export type ListedPort = SerialPortEntry & { device?: string };

/** The config when there is a valid one; `ports` also works on a gateway not configured yet. */
async function optionalConfig(path: string): Promise<AttacheConfig | undefined> {
  try {
    return await loadConfig(path);
  } catch (err) {
    if (isGatewayError(err)) return undefined;
    throw err;
  }
}

/** Configured device id per resolved device node. */
async function configuredPorts(config: AttacheConfig | undefined): Promise<Map<string, string>> {
  const byPath = new Map<string, string>();
  for (const device of config?.devices ?? []) {
    if (device.adapter !== 'rs232') continue;
    const target = await realpath(device.port.path).catch(() => device.port.path);
    byPath.set(target, device.id);
  }
  return byPath;
}

function describe(port: ListedPort): string {
  const usb = port.vendorId ? ` usb ${port.vendorId}:${port.productId ?? '?'}` : '';
  const maker = port.manufacturer ? ` ${port.manufacturer}` : '';
  const lines = [`${port.path}${usb}${maker}`];
  for (const link of port.links) lines.push(`  name:   ${link}`);
  if (port.device) lines.push(`  device: ${port.device} (configured)`);
  for (const h of port.heldBy) lines.push(`  in use: pid ${h.pid} ${h.command}`);
  if (!port.device && port.heldBy.length === 0) lines.push('  free');
  return lines.join('\n');
}

/**
 * Tells the running gateway that ports changed (the udev hot-plug unit runs this): its adapters
 * waiting for a port try now instead of at their next back-off retry. No gateway running: says so.
 */
async function rescan(config: AttacheConfig): Promise<void> {
  try {
    const { retried } = (await controlRequest(gatewayPaths(config).socket, 'rescan', 10_000)) as {
      retried: string[];
    };
    console.log(
      retried.length > 0
        ? printable(`gateway retried the ports of ${retried.join(', ')}`)
        : 'no adapter was waiting for a port',
    );
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE')) throw err;
    console.log('the gateway is not running');
  }
}

async function ports(args: PortsArgs): Promise<void> {
  if (args.rescan) return rescan(await readConfig(args.config));
  const configured = await configuredPorts(await optionalConfig(args.config));
  // Loaded here: `ports --rescan` (the hot-plug unit, at boot too) needs no serial library.
  const { DEFAULT_LINK_DIRS, listSerialPorts } = await import('@attache/adapter-rs232');
  const listed: ListedPort[] = (await listSerialPorts(args.linkDir ?? DEFAULT_LINK_DIRS)).map((port) => {
    const device = configured.get(port.path);
    return device === undefined ? port : { ...port, device };
  });
  if (args.json) {
    console.log(JSON.stringify(listed, null, 2));
    return;
  }
  if (listed.length === 0) console.log('no serial ports found');
  for (const port of listed) console.log(describe(port));
}

/** `attache ports [--json] [--link-dir DIR…]`. */
export const portsCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'ports',
    describe: 'list serial ports, their stable names, USB ids and what uses them',
    builder: (y) =>
      withConfig(y)
        .option('json', jsonOption)
        .option('rescan', {
          type: 'boolean',
          description: 'tell the running gateway that ports changed: adapters waiting for one try now',
          default: false,
        })
        .option('link-dir', {
          type: 'string',
          array: true,
          description: 'directories of stable names (default: /dev/serial/by-id and /dev/attache)',
        }),
    handler: (a) => ports(a).catch(fail),
  },
];
