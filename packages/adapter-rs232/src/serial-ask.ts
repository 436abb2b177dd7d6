import { SerialPort } from 'serialport/dist/serialport.js';
import type { SerialPortClass } from './serial-link.js';
import type { ProbeSetting } from './serial-probe.js';

/** Options of {@link askSerialPort}. */
export interface AskOptions {
  path: string;
  setting: Omit<ProbeSetting, 'dataBits' | 'parity'> & { dataBits: 8; parity: 'none' | 'even' };
  /** What to send once the port is open (a protocol's harmless opening request). */
  request: Buffer;
  /** How long to collect the answer, ms. */
  ms: number;
  /** Default serialport's `SerialPort`. */
  portClass?: SerialPortClass;
}

/**
 * Opens `path` at `setting`, sends `request` and resolves with the bytes received within `ms` (at
 * most 64 KiB), for devices that say nothing until asked (MEDIBUS, IntelliVue). Resolves with no
 * bytes when the port cannot be opened: the listening probe reports why.
 */
export async function askSerialPort(options: AskOptions): Promise<Buffer> {
  const PortClass = options.portClass ?? SerialPort;
  const port = new PortClass({ path: options.path, ...options.setting, autoOpen: false });
  try {
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  } catch {
    return Buffer.alloc(0);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  port.on('data', (chunk: Buffer) => {
    if (size < 65_536) chunks.push(chunk);
    size += chunk.length;
  });
  port.on('error', () => undefined);
  port.write(options.request);
  await new Promise((resolve) => setTimeout(resolve, options.ms));
  await new Promise<void>((resolve) => port.close(() => resolve()));
  return Buffer.concat(chunks);
}
