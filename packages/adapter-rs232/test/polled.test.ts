import { join } from 'node:path';
import { Rs232Adapter } from '@attache/adapter-rs232';
import {
  type ByteLink,
  type DeviceReading,
  ManualClock,
  type MedibusFormat,
  type ProtocolDriver,
  type ProtocolSession,
  type SessionContext,
  validateConfig,
} from '@attache/core';
import { MedibusDeviceSimulator, openPtyPair } from '@attache/devkit';
import { MedibusDriver } from '@attache/medibus';
import t, { type Test } from 'tap';

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The MEDIBUS driver the gateway would give the device, keeping each session's context. */
class KeptContexts implements ProtocolDriver {
  readonly protocol = 'medibus';
  readonly contexts: SessionContext[] = [];
  readonly #driver: MedibusDriver;
  constructor(format: MedibusFormat) {
    this.#driver = new MedibusDriver({ format });
  }
  open(link: ByteLink, context: SessionContext): ProtocolSession {
    this.contexts.push(context);
    return this.#driver.open(link, context);
  }
  close(): Promise<void> {
    return this.#driver.close();
  }
}

async function ventilator(t: Test) {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const sim = new MedibusDeviceSimulator({ path: pty.devicePath });
  await sim.open();
  t.teardown(() => sim.close());
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      {
        id: 'vent',
        adapter: 'rs232',
        port: { path: pty.gatewayPath, baudRate: 19200, parity: 'even', reconnectMs: 100 },
        format: {
          kind: 'medibus',
          poll: {
            periodMs: 100,
            replyTimeoutMs: 1000,
            retries: 1,
            linkTimeoutMs: 10_000,
            ask: ['measurements'],
          },
        },
      },
    ],
  });
  const device = config.devices[0];
  if (device?.adapter !== 'rs232' || device.format.kind !== 'medibus')
    throw new Error('not a medibus device');
  const driver = new KeptContexts(device.format);
  const readings: DeviceReading[] = [];
  // The session's timers run on it: a reply is late only when the test moves time past its timeout.
  const clock = new ManualClock();
  const adapter = new Rs232Adapter({
    device: { ...device, format: device.format },
    clock,
    driver,
    sink: async (reading) => {
      readings.push(reading);
    },
  });
  t.teardown(() => adapter.stop());
  await adapter.start();
  return { pty, sim, driver, adapter, readings, clock };
}

/** Moves `clock` on by `ms` at a time, letting real I/O run in between, until `condition` holds (30 s at most). */
async function advanceUntil(clock: ManualClock, ms: number, what: string, condition: () => boolean) {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await clock.advance(ms);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test(
  'a MEDIBUS ventilator at 8E1: readings stored; silent with its port open it shows disconnected, then connected',
  async (t) => {
    const { sim, adapter, readings, clock } = await ventilator(t);
    // Time moves on one poll period only once the poll before it was answered.
    for (let n = 1; n <= 3; n++) {
      await waitFor(`reading ${n}`, () => readings.length >= n);
      if (n < 3) await clock.advance(100);
    }
    t.equal(adapter.status().state, 'connected');
    t.notOk('unanswered' in adapter.status(), 'nothing unanswered yet');
    sim.faults.silent = true;
    await advanceUntil(clock, 500, 'the device lost', () => adapter.status().state === 'disconnected');
    const lost = adapter.status();
    t.equal(lost.lastError?.code, 'ATTACHE_TIMEOUT', 'why: the device stopped answering, not the port');
    t.ok((lost.unanswered ?? 0) >= 2, 'the unanswered requests are counted');
    sim.faults.silent = false;
    await advanceUntil(clock, 500, 'the device back', () => adapter.status().state === 'connected');
    const stored = adapter.status().stored;
    await advanceUntil(clock, 100, 'readings again', () => adapter.status().stored > stored);
    await adapter.stop();
    t.equal(adapter.status().state, 'stopped');
    t.equal(adapter.status().stored, readings.length, 'every reading handed on was counted stored');
  },
);

t.test('a session saying its device answers cannot make a closed port connected', async (t) => {
  const { pty, sim, driver, adapter, readings } = await ventilator(t);
  await waitFor('a reading', () => readings.length >= 1);
  await sim.close();
  await pty.close();
  await waitFor('disconnected', () => adapter.status().state === 'disconnected');
  driver.contexts[0]?.report.answering?.(true);
  t.equal(adapter.status().state, 'disconnected', 'still disconnected while the port is closed');
  t.equal(adapter.status().lastError?.code, 'ATTACHE_PORT_NOT_OPEN');
});
