import type { ByteLink } from '@attache/core';
import type { SerialPort, SerialPortMock } from 'serialport';

/** A serialport class: serialport's `SerialPort`, or `SerialPortMock` in tests. */
export type SerialPortClass = typeof SerialPort | typeof SerialPortMock;

/** An open port. */
export type SerialPortInstance = InstanceType<SerialPortClass>;

/** An open serial port as a protocol session's byte link. */
export function serialLink(port: SerialPortInstance): ByteLink {
  return {
    name: port.path,
    get open() {
      return port.isOpen;
    },
    write(bytes) {
      if (!port.isOpen) return false;
      port.write(bytes);
      return true;
    },
    pause: () => void port.pause(),
    resume: () => void port.resume(),
    close: () => {
      if (port.isOpen) port.close();
    },
  };
}
