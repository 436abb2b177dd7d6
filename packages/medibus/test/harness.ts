import type { ByteLink, DeviceReading, MedibusPoll, SessionReport } from '@attache/core';
import { ManualClock, nullLogger } from '@attache/core';
import { MedibusDeviceSimulator } from '@attache/devkit';
import { MedibusSession } from '../src/index.js';

/** The report a transport would keep, with what the session said. */
export class TestReport implements SessionReport {
  readonly counts = { frames: 0, stored: 0, malformed: 0, refused: 0 };
  readonly log = nullLogger;
  unansweredCount = 0;
  readonly malformedReasons: string[] = [];
  readonly presence: boolean[] = [];
  frame(): void {
    this.counts.frames++;
  }
  stored(n = 1): void {
    this.counts.stored += n;
  }
  malformed(err: unknown): void {
    this.counts.malformed++;
    this.malformedReasons.push((err as Error).message);
  }
  refused(_err: unknown, n = 1): void {
    this.counts.refused += n;
  }
  unanswered(): void {
    this.unansweredCount++;
  }
  answering(answering: boolean): void {
    this.presence.push(answering);
  }
}

export const poll: MedibusPoll = {
  periodMs: 1000,
  ask: ['measurements', 'alarms', 'settings'],
  replyTimeoutMs: 200,
  retries: 2,
  linkTimeoutMs: 3000,
};

/** Lets replies delivered as microtasks and sink calls settle. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A session wired to an in-memory simulated device, a manual clock and a recording sink. */
export async function rig(
  options: { poll?: Partial<MedibusPoll>; sink?: (r: DeviceReading) => Promise<void> } = {},
) {
  const clock = new ManualClock();
  const device = new MedibusDeviceSimulator();
  const report = new TestReport();
  const readings: DeviceReading[] = [];
  const written: Buffer[] = [];
  let open = true;
  let session: MedibusSession | undefined;
  device.attach((bytes) => queueMicrotask(() => session?.receive(bytes)));
  const link: ByteLink = {
    name: 'memory',
    get open() {
      return open;
    },
    write(bytes) {
      written.push(bytes);
      queueMicrotask(() => device.receive(bytes));
      return open;
    },
    pause: () => undefined,
    resume: () => undefined,
    close: () => {
      open = false;
    },
  };
  const sink =
    options.sink ??
    (async (reading: DeviceReading) => {
      readings.push(reading);
    });
  session = new MedibusSession(
    link,
    { deviceId: 'vent-1', sink, refusing: () => false, report, clock },
    { ...poll, ...options.poll },
  );
  for (let i = 0; i < 10; i++) await settle();
  return { clock, device, report, readings, written, session };
}
