import { join } from 'node:path';
import { Rs232Adapter } from '@attache/adapter-rs232';
import {
  type ByteLink,
  type DeviceReading,
  type ProtocolDriver,
  type ProtocolSession,
  type Rs232DeviceConfig,
  type SessionContext,
  validateConfig,
} from '@attache/core';
import { MedibusDeviceSimulator, openPtyPair } from '@attache/devkit';
import { MedibusDriver } from '@attache/medibus';
import t, { type Test } from 'tap';

async function until(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function device(path: string, format: Record<string, unknown>): Rs232DeviceConfig {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-test' },
    devices: [{ id: 'vent', adapter: 'rs232', port: { path, reconnectMs: 100 }, format }],
  });
  return config.devices[0] as Rs232DeviceConfig;
}

async function ptys(t: Test) {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  return pty;
}

t.test(
  'a MEDIBUS driver on a pty: readings stored, silence shown as disconnected, then connected',
  async (t) => {
    const pty = await ptys(t);
    const sim = new MedibusDeviceSimulator({ path: pty.devicePath });
    await sim.open();
    t.teardown(() => sim.close());
    const dev = device(pty.gatewayPath, {
      kind: 'medibus',
      poll: { periodMs: 100, replyTimeoutMs: 100, retries: 1, linkTimeoutMs: 500, ask: ['measurements'] },
    });
    const readings: DeviceReading[] = [];
    const adapter = new Rs232Adapter({
      device: dev,
      driver: new MedibusDriver({ format: dev.format as never }),
      sink: async (r) => {
        readings.push(r);
      },
    });
    await adapter.start();
    await until('three readings', () => readings.length >= 3);
    t.equal(adapter.status().state, 'connected');
    sim.faults.silent = true;
    await until('the device lost', () => adapter.status().state === 'disconnected');
    const lost = adapter.status();
    t.equal(lost.lastError?.code, 'ATTACHE_TIMEOUT');
    t.ok((lost.unanswered ?? 0) >= 2, 'the unanswered requests are counted');
    sim.faults.silent = false;
    await until('the device back', () => adapter.status().state === 'connected');
    const stored = adapter.status().stored;
    await until('readings again', () => adapter.status().stored > stored);
    await adapter.stop();
    t.equal(adapter.status().state, 'stopped');
    t.equal(adapter.status().stored, readings.length, 'every reading handed on was counted stored');
  },
);

/** A driver that echoes, and uses every part of the link, to show what the bridge hands a session. */
class EchoDriver implements ProtocolDriver {
  readonly protocol = 'echo';
  links: ByteLink[] = [];
  ended = 0;
  closed = false;
  open(link: ByteLink, context: SessionContext): ProtocolSession {
    this.links.push(link);
    context.report.answering?.(false, 'not an error');
    context.report.answering?.(true);
    return {
      receive: (chunk) => {
        context.report.frame();
        link.pause();
        link.write(chunk);
        link.resume();
        if (chunk.includes(0x04)) link.close();
      },
      end: () => {
        this.ended++;
      },
      drained: async () => undefined,
    };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

t.test(
  'the bridge gives each port a session; a closed link drops writes; stop closes the driver',
  async (t) => {
    const pty = await ptys(t);
    const driver = new EchoDriver();
    const adapter = new Rs232Adapter({
      device: device(pty.gatewayPath, { kind: 'medibus' }),
      driver,
      sink: async () => undefined,
    });
    const { SerialPort } = await import('serialport');
    const far = new SerialPort({ path: pty.devicePath, baudRate: 9600, lock: false });
    await new Promise((resolve) => far.once('open', resolve));
    t.teardown(() => new Promise<void>((resolve) => (far.isOpen ? far.close(() => resolve()) : resolve())));
    const echoed: Buffer[] = [];
    far.on('data', (c: Buffer) => echoed.push(c));
    await adapter.start();
    t.equal(driver.links[0]?.name, pty.gatewayPath);
    t.equal(driver.links[0]?.open, true);
    far.write('hello');
    await until('the echo', () => Buffer.concat(echoed).toString() === 'hello');
    far.write(Buffer.from([0x04]));
    await until('the session ended', () => driver.ended === 1);
    t.equal(driver.links[0]?.open, false);
    t.equal(driver.links[0]?.write(Buffer.from('x')), false, 'a write after close is dropped');
    driver.links[0]?.close();
    await until('a new session on the reopened port', () => driver.links.length === 2);
    t.equal(adapter.status().state, 'connected', 'the device answers on the new session');
    await adapter.stop();
    t.ok(driver.closed, 'stop() closes the driver');
  },
);

t.test('a format that needs a driver is refused without one', async (t) => {
  t.throws(
    () => new Rs232Adapter({ device: device('/dev/null', { kind: 'medibus' }), sink: async () => undefined }),
    TypeError,
  );
});
