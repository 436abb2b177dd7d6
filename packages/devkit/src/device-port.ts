import { SerialPort } from 'serialport';

/** A simulator's open end of a pty: what it writes, and how it lets go. */
export interface DevicePort {
  /** Writes to the gateway's end; dropped once the port closed. */
  write(bytes: Buffer): void;
  close(): Promise<void>;
}

/**
 * Opens the device end of a test pty for a request/reply simulator, feeding what the gateway sends to
 * `onData`. No exclusive lock: a test replaces one simulated device with the next at once. Port errors
 * (the gateway's end going away) are the test's to observe through the gateway, not the simulator's.
 */
export async function openDevicePort(
  path: string,
  baudRate: number,
  onData: (chunk: Buffer) => void,
): Promise<DevicePort> {
  const port = new SerialPort({ path, baudRate, autoOpen: false, lock: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on('data', onData);
  port.on('error', () => undefined);
  return {
    write: (bytes) => {
      if (port.isOpen) port.write(bytes);
    },
    close: () =>
      port.isOpen ? new Promise<void>((resolve) => port.close(() => resolve())) : Promise.resolve(),
  };
}
