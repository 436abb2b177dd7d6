import { BlockList, isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { unmapAddress } from './allow-list.js';

/** The host's network interfaces, as `os.networkInterfaces()` returns them. */
export type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

interface Network {
  address: string;
  prefix: number;
  family: 4 | 6;
}

function parseNetwork(cidr: string): Network | undefined {
  const [address = '', prefixText] = cidr.trim().split('/');
  const plain = unmapAddress(address);
  const family = isIP(plain);
  if (family !== 4 && family !== 6) return undefined;
  const full = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? full : Number(prefixText);
  return Number.isInteger(prefix) && prefix >= 0 && prefix <= full
    ? { address: plain, prefix, family }
    : undefined;
}

/** True when every address of `inner` lies inside `outer`. */
function within(inner: Network, outer: Network): boolean {
  if (inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  const list = new BlockList();
  const type = outer.family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(outer.address, outer.prefix, type);
  return list.check(inner.address, type);
}

/**
 * The address a listener binds when its `endpoint.host` is not set: the address of the first local
 * interface whose network holds every entry of the allow-list (`127.0.0.1` for a loopback-only
 * list), so that the port is not reachable on the gateway's other interfaces (the hospital LAN, a
 * management network). Undefined when no single interface covers the list (entries on two
 * networks, or wider than any interface's network): `endpoint.host` must then be set.
 */
export function bindAddressFor(allow: readonly string[], interfaces: InterfaceTable): string | undefined {
  const entries = allow.map(parseNetwork);
  if (entries.length === 0 || entries.some((e) => e === undefined)) return undefined;
  for (const infos of Object.values(interfaces)) {
    for (const info of infos ?? []) {
      const network = info.cidr === null ? undefined : parseNetwork(info.cidr);
      if (network && entries.every((e) => e !== undefined && within(e, network))) return info.address;
    }
  }
  return undefined;
}
