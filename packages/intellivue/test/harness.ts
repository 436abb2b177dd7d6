import type { ByteLink, DeviceReading, IntelliVuePoll } from '@attache/core';
import { ManualClock } from '@attache/core';
import { IntelliVueMonitorSimulator, type IntelliVueMonitorSimulatorOptions } from '@attache/devkit';
import { TestReport } from '../../medibus/test/harness.js';
import { IntelliVueSession } from '../src/index.js';

export { TestReport };

export const poll: IntelliVuePoll = {
  periodMs: 1000,
  ask: ['numerics', 'alerts'],
  replyTimeoutMs: 200,
  retries: 2,
  linkTimeoutMs: 3000,
};

export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A session wired to an in-memory simulated monitor, a manual clock and a recording sink. */
export async function rig(
  options: {
    poll?: Partial<IntelliVuePoll>;
    sink?: (r: DeviceReading) => Promise<void>;
    monitor?: IntelliVueMonitorSimulatorOptions;
  } = {},
) {
  const clock = new ManualClock();
  const monitor = new IntelliVueMonitorSimulator(options.monitor);
  const report = new TestReport();
  const readings: DeviceReading[] = [];
  let session: IntelliVueSession | undefined;
  monitor.attach((bytes) => queueMicrotask(() => session?.receive(bytes)));
  const link: ByteLink = {
    name: 'memory',
    open: true,
    write(bytes) {
      queueMicrotask(() => monitor.receive(bytes));
      return true;
    },
    pause: () => undefined,
    resume: () => undefined,
    close: () => undefined,
  };
  const sink =
    options.sink ??
    (async (reading: DeviceReading) => {
      readings.push(reading);
    });
  session = new IntelliVueSession(
    link,
    { deviceId: 'mon-1', sink, refusing: () => false, report, clock },
    { ...poll, ...options.poll },
  );
  for (let i = 0; i < 20; i++) await settle();
  await clock.advance(0);
  for (let i = 0; i < 20; i++) await settle();
  return { clock, monitor, report, readings, session };
}
