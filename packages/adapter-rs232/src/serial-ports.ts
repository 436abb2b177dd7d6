import { readdir, readlink, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { SerialPort } from 'serialport/dist/serialport.js';

/** One serial port as `attache ports` shows it. */
export interface SerialPortEntry {
  /** The device node (`/dev/ttyUSB0`), symlinks resolved. */
  path: string;
  /** Stable names pointing at it (`/dev/serial/by-id/…`, `/dev/attache/…`). */
  links: string[];
  manufacturer?: string;
  serialNumber?: string;
  /** USB vendor and product ids (hex), when the port is a USB adapter. */
  vendorId?: string;
  productId?: string;
  /** Processes holding it open (from /proc/<pid>/fd, where readable). */
  heldBy: { pid: number; command: string }[];
}

/** Where stable names live: udev's by-id links and the image's own aliases. */
export const DEFAULT_LINK_DIRS: readonly string[] = ['/dev/serial/by-id', '/dev/attache'];

async function links(dirs: readonly string[]): Promise<Map<string, string[]>> {
  const byTarget = new Map<string, string[]>();
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.sort()) {
      const link = join(dir, name);
      const target = await realpath(link).catch(() => undefined);
      if (target !== undefined) byTarget.set(target, [...(byTarget.get(target) ?? []), link]);
    }
  }
  return byTarget;
}

/** Which processes hold each of `paths` open; unreadable /proc entries are skipped. */
async function holders(paths: Set<string>): Promise<Map<string, { pid: number; command: string }[]>> {
  const held = new Map<string, { pid: number; command: string }[]>();
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!paths.has(target)) continue;
      const command = await readlink(`/proc/${pid}/exe`).catch(() => '?');
      const list = held.get(target) ?? [];
      if (!list.some((h) => h.pid === Number(pid))) list.push({ pid: Number(pid), command });
      held.set(target, list);
    }
  }
  return held;
}

/** The processes holding `path` (or the node it links to) open; empty when none or unreadable. */
export async function portHolders(path: string): Promise<{ pid: number; command: string }[]> {
  const target = await realpath(path).catch(() => path);
  return (await holders(new Set([target]))).get(target) ?? [];
}

/**
 * The serial ports serialport enumerates, plus every node a link in `linkDirs` points at (a pty
 * behind an alias, for instance), with their links, USB identity and the processes holding them.
 * Sorted by path. Never rejects for a missing directory or an unreadable /proc entry.
 */
export async function listSerialPorts(
  linkDirs: readonly string[] = DEFAULT_LINK_DIRS,
): Promise<SerialPortEntry[]> {
  const listed = await SerialPort.list().catch(() => []);
  const byTarget = await links(linkDirs);
  const entries = new Map<string, SerialPortEntry>();
  for (const info of listed) {
    const path = await realpath(info.path).catch(() => info.path);
    entries.set(path, {
      path,
      links: [],
      ...(info.manufacturer ? { manufacturer: info.manufacturer } : {}),
      ...(info.serialNumber ? { serialNumber: info.serialNumber } : {}),
      ...(info.vendorId ? { vendorId: info.vendorId } : {}),
      ...(info.productId ? { productId: info.productId } : {}),
      heldBy: [],
    });
  }
  for (const [target, names] of byTarget) {
    const entry = entries.get(target) ?? { path: target, links: [], heldBy: [] };
    entry.links = names;
    entries.set(target, entry);
  }
  const held = await holders(new Set(entries.keys()));
  for (const [path, list] of held) {
    const entry = entries.get(path);
    if (entry) entry.heldBy = list;
  }
  return [...entries.values()].sort((a, b) => a.path.localeCompare(b.path));
}
