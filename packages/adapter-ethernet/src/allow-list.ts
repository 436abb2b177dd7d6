import { BlockList, isIP } from 'node:net';
import type { ConfigIssue } from '@attache/core';
import { GatewayError } from '@attache/core';

/** Peers allowed to connect to a listener. */
export interface AllowList {
  /** True when `address` (IPv4, IPv6, or IPv4-mapped IPv6 as sockets report it) is allowed. */
  allows(address: string | undefined): boolean;
}

const mappedV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) as plain IPv4; others unchanged. */
export function unmapAddress(address: string): string {
  return mappedV4.exec(address)?.[1] ?? address;
}

function addEntry(list: BlockList, entry: string): boolean {
  const [address = '', prefixText, extra] = entry.trim().split('/');
  const plain = unmapAddress(address);
  const family = isIP(plain);
  if (family === 0 || extra !== undefined) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) {
    list.addAddress(plain, type);
    return true;
  }
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (prefix < 0 || prefix > (family === 4 ? 32 : 128)) return false;
  list.addSubnet(plain, prefix, type);
  return true;
}

/**
 * Builds the allow-list of a listener from addresses and CIDR ranges (`10.1.2.7`, `10.1.2.0/24`,
 * `fd00::/8`). Throws a GatewayError `ATTACHE_CONFIG_INVALID` listing every bad entry (issue path
 * `/endpoint/allow/<i>`).
 */
export function parseAllowList(entries: readonly string[]): AllowList {
  const list = new BlockList();
  const issues: ConfigIssue[] = [];
  entries.forEach((entry, i) => {
    if (!addEntry(list, entry)) {
      issues.push({ path: `/endpoint/allow/${i}`, message: 'not an IP address or CIDR range' });
    }
  });
  if (issues.length > 0) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', 'endpoint.allow holds an invalid entry', { issues });
  }
  return {
    allows(address) {
      if (address === undefined) return false;
      const plain = unmapAddress(address);
      const family = isIP(plain);
      return family !== 0 && list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}
