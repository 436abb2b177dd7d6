import { readFile } from 'node:fs/promises';

/** Where a Raspberry Pi tells its serial number: the device tree (Pi 4, 5) and /proc/cpuinfo (all). */
const sources = ['/sys/firmware/devicetree/base/serial-number', '/proc/cpuinfo'];

/** The serial number in a device-tree `serial-number` file or a `/proc/cpuinfo` `Serial` line. */
export function parseSerialNumber(text: string): string | null {
  const cpuinfo = /^Serial\s*:\s*([0-9A-Za-z]+)\s*$/m.exec(text);
  const value = cpuinfo ? cpuinfo[1] : text.includes(':') ? undefined : text.replace(/\0/g, '').trim();
  return value && /^[0-9A-Za-z]{1,64}$/.test(value) ? value : null;
}

/**
 * The board's serial number, the Fleet Provisioning `SerialNumber` parameter: `$ATTACHE_SERIAL_NUMBER`
 * when set (tests, boards without one), else the Pi's own; null when there is none.
 */
export async function readSerialNumber(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (env.ATTACHE_SERIAL_NUMBER) return parseSerialNumber(env.ATTACHE_SERIAL_NUMBER);
  for (const source of sources) {
    const text = await readFile(source, 'utf8').catch(() => '');
    const serial = parseSerialNumber(text);
    if (serial) return serial;
  }
  return null;
}
