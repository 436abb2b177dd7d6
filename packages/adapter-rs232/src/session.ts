import type {
  KvLineFormat,
  ReadingSink,
  RegexLineFormat,
  Rs232DeviceConfig,
  SinkRefusing,
} from '@attache/core';
import type { SerialPort, SerialPortMock } from 'serialport';
import type { AdapterReport } from './adapter-report.js';

/** A serialport class: serialport's `SerialPort`, or `SerialPortMock` in tests. */
export type SerialPortClass = typeof SerialPort | typeof SerialPortMock;

/** An open port. */
export type SerialLink = InstanceType<SerialPortClass>;

/** What a format session needs from its adapter. */
export interface SessionContext {
  device: Rs232DeviceConfig;
  sink: ReadingSink;
  /** True while the sink would refuse readings (see Rs232AdapterOptions). */
  refusing: SinkRefusing;
  report: AdapterReport;
}

/** A line-oriented format. */
export type LineFormat = KvLineFormat | RegexLineFormat;

/** How one serial format reads the ports an adapter opens, one after the other (reconnects). */
export interface SerialSession {
  /** Takes over a freshly opened port; the previous one (if any) has closed. */
  attach(port: SerialLink): void;
  /** Resolves once every frame read so far went through the sink. */
  drained(): Promise<void>;
  /** Stops the session's timers and closes its files (after the last port closed and drained). */
  close(): Promise<void>;
}
