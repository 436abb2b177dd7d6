import { join } from 'node:path';
import { Rs232Adapter } from '@attache/adapter-rs232';
import { adapterContractSuite } from '@attache/adapter-test-suite';
import { type Rs232DeviceConfig, validateConfig } from '@attache/core';
import { openPtyPair, type PtyPair } from '@attache/devkit';
import { LineDriver } from '@attache/line-formats';
import { SerialPort } from 'serialport';
import t from 'tap';

/** The device's end of a pty, opened without a lock (as the devkit simulators do). */
async function openDeviceEnd(path: string): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false, lock: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

function closePort(port: SerialPort | undefined): Promise<void> {
  return new Promise((resolve) => (port?.isOpen ? port.close(() => resolve()) : resolve()));
}

// The adapter contract on a real serial link: a socat pty, a kv-line device, socat killed and restarted.
adapterContractSuite(t, {
  supports: { push: true, reconnect: true },
  rig: async (t, sink) => {
    const dir = join(t.testdir(), 'pty');
    let pty: PtyPair = await openPtyPair(dir);
    let device = await openDeviceEnd(pty.devicePath);
    t.teardown(async () => {
      await closePort(device);
      await pty.close();
    });
    const config = validateConfig({
      version: 1,
      gateway: { id: 'gw' },
      devices: [
        {
          id: 'spo2-1',
          adapter: 'rs232',
          port: { path: pty.gatewayPath, reconnectMs: 100 },
          format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
        },
      ],
    });
    const dev = config.devices[0] as Rs232DeviceConfig;
    if (dev.format.kind !== 'kv-line') throw new Error('not a kv-line device');
    const { delimiter, maxLineBytes } = dev.port;
    const driver = new LineDriver({ format: dev.format, adapter: 'rs232', delimiter, maxLineBytes });
    const adapter = new Rs232Adapter({ device: dev, driver, sink });
    return {
      adapter,
      send: () =>
        new Promise<void>((resolve) => device.write('SPO2=097\r\n', () => device.drain(() => resolve()))),
      breakLink: async () => {
        await closePort(device);
        await pty.close();
      },
      restoreLink: async () => {
        pty = await openPtyPair(dir);
        device = await openDeviceEnd(pty.devicePath);
      },
    };
  },
});
