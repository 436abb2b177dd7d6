import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';

/**
 * True when the kernel has a route to `host`: resolves the name, then asks `ip route get <address>`
 * (iproute2). False when the name does not resolve, no route exists, or `ip` fails. Never rejects.
 */
export async function hasRouteTo(host: string): Promise<boolean> {
  let address: string;
  try {
    address = (await lookup(host)).address;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    execFile('ip', ['route', 'get', address], { timeout: 5000 }, (err, stdout) => {
      resolve(!err && stdout.trim() !== '' && !/unreachable|prohibit|blackhole/.test(stdout));
    });
  });
}
