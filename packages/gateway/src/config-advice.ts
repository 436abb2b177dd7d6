import type { AttacheConfig } from '@attache/core';

/** Something valid in a config that will bite later; `path` is a JSON pointer like a config issue's. */
export interface ConfigAdvice {
  path: string;
  message: string;
}

/** Kernel names that USB-serial adapters get in plug-in order: they change on a replug or a reboot. */
const unstableTty = /^\/dev\/tty(?:USB|ACM)\d+$/;

/**
 * Advice on a valid config: serial ports named `/dev/ttyUSBn` or `/dev/ttyACMn` rather than by a
 * stable name (`/dev/serial/by-id/…` or a udev alias), since a second adapter plugged in first, or a
 * reboot, can swap two devices' readings.
 */
export function configAdvice(config: AttacheConfig): ConfigAdvice[] {
  const advice: ConfigAdvice[] = [];
  for (const [i, device] of config.devices.entries()) {
    const at =
      device.adapter === 'rs232'
        ? { path: `/devices/${i}/port/path`, tty: device.port.path }
        : device.adapter === 'modbus' && device.bus.transport === 'rtu'
          ? { path: `/devices/${i}/bus/path`, tty: device.bus.path }
          : undefined;
    if (at === undefined || !unstableTty.test(at.tty)) continue;
    advice.push({
      path: at.path,
      message: `${at.tty} can name another device after a replug or a reboot: use its /dev/serial/by-id/ name (attache ports lists them)`,
    });
  }
  return advice;
}
