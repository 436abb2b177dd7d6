import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import type { AttacheConfig } from '@attache/core';
import { type CheckResult, fail, ok, warn } from './check.js';

/** A process holding a file or socket open. */
interface Holder {
  pid: number;
  command: string;
}

/** Which processes hold each of `targets` (fd link texts: a path, or `socket:[inode]`) open. */
async function holders(targets: Set<string>): Promise<Map<string, Holder[]>> {
  const held = new Map<string, Holder[]>();
  if (targets.size === 0) return held;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!targets.has(target)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      const command = cmdline.split('\0').filter(Boolean).slice(0, 4).join(' ') || '?';
      const list = held.get(target) ?? [];
      if (!list.some((h) => h.pid === Number(pid))) list.push({ pid: Number(pid), command });
      held.set(target, list);
    }
  }
  return held;
}

/** Socket inodes listening on TCP `port` (any address), from /proc/net/tcp and tcp6. */
async function listeningInodes(port: number): Promise<string[]> {
  const inodes: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1]?.split(':')[1];
      // State 0A is LISTEN.
      if (local !== undefined && Number.parseInt(local, 16) === port && cols[3] === '0A' && cols[9]) {
        inodes.push(`socket:[${cols[9]}]`);
      }
    }
  }
  return inodes;
}

/** The pseudo-terminal multiplexer: who holds it open has made a pty. */
const ptmx = '/dev/ptmx';

/** A process that is the gateway (`attache run`, or its window worker). */
const isGateway = (h: Holder) => /\battache\b.*\brun\b|bin\.js run|window-worker/.test(h.command);

function describe(list: Holder[]): string {
  return list.map((h) => `pid ${h.pid} (${h.command})`).join(', ');
}

/** A verdict on who holds a device's port: the gateway (or nobody when it is not running) is right. */
function verdict(
  check: string,
  what: string,
  list: Holder[],
  gatewayRunning: boolean,
  bridges: Holder[] = [],
): CheckResult {
  // A pseudo-terminal is also held by whoever made it (socat or ser2net bridging a networked serial
  // server): that process is the device side, not a competitor.
  const bridge = list.filter((h) => bridges.some((b) => b.pid === h.pid));
  if (bridge.length > 0) what = `${what} (a pty bridged by ${describe(bridge)})`;
  list = list.filter((h) => !bridge.includes(h));
  const others = list.filter((h) => !isGateway(h));
  if (others.length > 0) {
    return fail(
      check,
      `${what} is held by ${describe(others)}`,
      'stop that program: the gateway cannot use the port while it holds it',
    );
  }
  if (list.length > 0) return ok(check, `${what}, held by the gateway (${describe(list)})`);
  return gatewayRunning
    ? warn(check, `${what}, not held by the gateway`, "see attache status for this device's last error")
    : ok(check, `${what}, free (the gateway is not running)`);
}

/** Each configured serial port present and who holds it; each listening TCP port and who holds it. */
export async function checkPorts(config: AttacheConfig, gatewayRunning: boolean): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const serial: [string, string][] = [];
  const tcp: [string, number][] = [];
  for (const device of config.devices) {
    if (device.adapter === 'rs232') serial.push([device.id, device.port.path]);
    else if (device.adapter === 'modbus' && device.bus.transport === 'rtu')
      serial.push([device.id, device.bus.path]);
    else if (device.adapter === 'ethernet' && device.endpoint.mode === 'listen')
      tcp.push([device.id, device.endpoint.port]);
  }
  const nodes = new Map<string, string>();
  for (const [id, path] of serial) {
    const node = await realpath(path).catch(() => undefined);
    if (node === undefined) {
      results.push(
        fail(
          `port ${id}`,
          `${path} is not present`,
          'plug the adapter in (attache ports lists what is there) or fix the path',
        ),
      );
    } else nodes.set(id, node);
  }
  const inodes = new Map<string, string[]>();
  for (const [id, port] of tcp) inodes.set(id, await listeningInodes(port));
  const held = await holders(new Set([...nodes.values(), ...[...inodes.values()].flat(), ptmx]));
  const bridges = held.get(ptmx) ?? [];
  for (const [id, path] of serial) {
    const node = nodes.get(id);
    if (node === undefined) continue;
    const pty = node.startsWith('/dev/pts/') ? bridges : [];
    results.push(verdict(`port ${id}`, `${path} present`, held.get(node) ?? [], gatewayRunning, pty));
  }
  for (const [id, port] of tcp) {
    const list = (inodes.get(id) ?? []).flatMap((inode) => held.get(inode) ?? []);
    const listening = (inodes.get(id) ?? []).length > 0;
    if (listening && list.length === 0) {
      results.push(
        warn(
          `port ${id}`,
          `TCP ${port} is listened on by a process doctor cannot see`,
          'run doctor as root to see who',
        ),
      );
    } else results.push(verdict(`port ${id}`, `TCP ${port}`, list, gatewayRunning));
  }
  return results;
}
