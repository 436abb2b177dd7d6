import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** One address to bind, with the interface it belongs to (for link-local IPv6). */
export interface BindAddress {
  address: string;
  family: 4 | 6;
}

/**
 * The addresses the `listen` entries name now: an IP address as given; an interface name, every
 * address it has at the moment (none when it is down or absent: the page binds them when they
 * appear). IPv6 link-local addresses carry their interface (`fe80::1%usb0`).
 */
export function resolveListen(
  entries: readonly string[],
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): BindAddress[] {
  const out = new Map<string, BindAddress>();
  for (const entry of entries) {
    const family = isIP(entry.split('%')[0] ?? '');
    if (family !== 0) {
      out.set(entry, { address: entry, family: family as 4 | 6 });
      continue;
    }
    for (const info of interfaces[entry] ?? []) {
      const linkLocal = info.family === 'IPv6' && info.address.toLowerCase().startsWith('fe80:');
      const address = linkLocal ? `${info.address}%${entry}` : info.address;
      out.set(address, { address, family: info.family === 'IPv4' ? 4 : 6 });
    }
  }
  return [...out.values()];
}

/** `host:port` as a browser writes it in the Host header (IPv6 in brackets, without the zone). */
export function hostHeader(address: BindAddress, port: number): string {
  const bare = address.address.split('%')[0] as string;
  return address.family === 6 ? `[${bare}]:${port}` : `${bare}:${port}`;
}
