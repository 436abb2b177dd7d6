import { rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { presenceCheckMs, Rs232Adapter } from '@attache/adapter-rs232';
import {
  type DeviceReading,
  GatewayError,
  ManualClock,
  type ReadingSink,
  validateConfig,
} from '@attache/core';
import {
  type LogEntry as Entry,
  LineDeviceSimulator,
  openPtyPair,
  type PtyPair,
  recordingLogger,
} from '@attache/devkit';
import { LineDriver, parseKvLine } from '@attache/line-formats';
import { SerialPort, SerialPortMock } from 'serialport';
import t, { type Test } from 'tap';

function deviceConfig(
  path: string,
  port: Record<string, unknown> = {},
  format: Record<string, unknown> = {},
) {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw' },
    devices: [
      {
        id: 'spo2-bed7',
        adapter: 'rs232',
        port: { path, reconnectMs: 100, ...port },
        format: {
          kind: 'kv-line',
          fields: {
            SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' },
            HR: { code: 'MDC_PULS_OXIM_PULS_RATE', unit: '/min' },
          },
          ...format,
        },
      },
    ],
  });
  const device = config.devices[0];
  if (device?.adapter !== 'rs232' || device.format.kind !== 'kv-line')
    throw new Error('not a kv-line device');
  return { ...device, format: device.format };
}

/** The device's config and the line driver the gateway would give it. */
function lineDevice(...args: Parameters<typeof deviceConfig>) {
  const device = deviceConfig(...args);
  const { delimiter, maxLineBytes } = device.port;
  return {
    device,
    driver: new LineDriver({ format: device.format, adapter: 'rs232', delimiter, maxLineBytes }),
  };
}

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Rig {
  pty: PtyPair;
  device: LineDeviceSimulator;
  adapter: Rs232Adapter;
  readings: DeviceReading[];
  logs: Entry[];
}

async function rig(
  t: Test,
  options: { port?: Record<string, unknown>; format?: Record<string, unknown>; sink?: ReadingSink } = {},
): Promise<Rig> {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const readings: DeviceReading[] = [];
  const logs: Entry[] = [];
  const sink =
    options.sink ??
    (async (reading: DeviceReading) => {
      readings.push(reading);
    });
  const adapter = new Rs232Adapter({
    ...lineDevice(pty.gatewayPath, options.port, options.format),
    sink,
    logger: recordingLogger(logs),
  });
  t.teardown(() => adapter.stop());
  await adapter.start();
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin' });
  await device.open();
  t.teardown(() => device.close());
  return { pty, device, adapter, readings, logs };
}

t.test('N lines on a pty become N readings, in order, with their fields', async (t) => {
  const { device, adapter, readings } = await rig(t);
  t.equal(adapter.status().state, 'connected');
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) sent.push(await device.sendReading());
  await waitFor('30 readings', () => readings.length === 30);
  t.same(
    readings.map((r) => r.raw.toString('latin1')),
    sent,
    'every line, in order, raw without CR LF',
  );
  t.same(
    readings.map((r) => r.fields),
    sent.map((line) => parseKvLine(line, deviceConfig('x').format).fields),
  );
  const first = readings[0] as DeviceReading;
  t.match(first, { deviceId: 'spo2-bed7', adapter: 'rs232', protocol: 'kv-line' });
  t.ok(Math.abs(first.receivedAt - Date.now()) < 60_000, 'receivedAt is wall-clock ms');
  t.ok(first.monotonicMs > 0);
  t.match(adapter.status(), { frames: 30, stored: 30, malformed: 0, refused: 0 });
});

t.test('malformed lines are counted and logged without content; the next good line arrives', async (t) => {
  const { device, adapter, readings, logs } = await rig(t, {
    port: { maxLineBytes: 64 },
    format: { timestamp: 'HH:mm:ss' },
  });
  await device.sendRaw('08:00:00 SPO2=097 HR=072\r\n');
  await device.sendRaw(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a]));
  await device.sendRaw('hello MRN4242 world\r\n');
  await device.sendRaw('25:61:00 SPO2=097 HR=072\r\n');
  await device.sendRaw(`${'PID=MRN4242 '.repeat(20)}\r\n`);
  await device.sendRaw('08:00:01 SPO2=098 HR=073\r\n');
  await waitFor('the good line after the bad ones', () => readings.length === 2);
  await waitFor('all counted', () => adapter.status().malformed === 4);
  t.same(
    readings.map((r) => r.deviceTime),
    ['08:00:00', '08:00:01'],
  );
  t.match(adapter.status(), { state: 'connected', frames: 6, stored: 2, malformed: 4, refused: 0 });
  t.match(adapter.status().lastError, { code: 'ATTACHE_MALFORMED' });
  const warnings = logs.filter((e) => e.level === 'warn');
  t.equal(warnings.length, 4, 'one warning per malformed line');
  for (const w of warnings) {
    t.match(w, {
      deviceId: 'spo2-bed7',
      module: 'adapter-rs232',
      reason: String,
      bytes: Number,
      malformed: Number,
    });
  }
  const bytes = warnings.map((w) => Number(w.bytes)).sort((a, b) => a - b);
  t.same(bytes.slice(0, 3), [4, 19, 24], 'the byte length of each bad line');
  t.ok((bytes[3] ?? 0) > 64, 'the over-long run is longer than maxLineBytes');
  t.notMatch(JSON.stringify(logs), /MRN4242|hello|25:61/, 'no line content in any log');
});

t.test(
  'blank lines between readings (CR LF CR LF, a lone CR, spaces) are skipped, not malformed',
  async (t) => {
    const { device, adapter, readings, logs } = await rig(t);
    await device.sendRaw('SPO2=097 HR=072\r\n\r\n');
    await device.sendRaw('\r\r\n  \t\r\n');
    await device.sendRaw('SPO2=098 HR=073\r\n\r\n');
    await waitFor('both readings', () => readings.length === 2);
    await device.sendRaw('SPO2=099 HR=074\r\n');
    await waitFor('the third reading', () => readings.length === 3);
    t.match(adapter.status(), { frames: 3, stored: 3, malformed: 0 }, 'only the readings count as frames');
    t.same(
      logs.filter((e) => e.level === 'warn'),
      [],
      'no warning',
    );
  },
);

t.test('sink rejections are counted as refused or malformed by their code', async (t) => {
  const outcomes = [
    new GatewayError('ATTACHE_CACHE_WRITE', 'disk full'),
    new GatewayError('ATTACHE_MALFORMED', 'device spo2-bed7 field SPO2 is not a number'),
    undefined,
  ];
  const seen: DeviceReading[] = [];
  const { device, adapter, logs } = await rig(t, {
    sink: async (reading) => {
      seen.push(reading);
      const outcome = outcomes.shift();
      if (outcome) throw outcome;
    },
  });
  await device.sendReading();
  await device.sendReading();
  await device.sendReading();
  await device.sendReading();
  await waitFor('four sink calls', () => seen.length === 4 && adapter.status().stored === 2);
  t.match(adapter.status(), { frames: 4, stored: 2, malformed: 1, refused: 1 });
  t.ok(
    logs.some((e) => e.level === 'warn' && e.msg === 'reading refused by the sink'),
    'the refusal is logged',
  );
});

t.test('a port missing at start is picked up once it appears', async (t) => {
  const dir = t.testdir();
  const logs: Entry[] = [];
  const readings: DeviceReading[] = [];
  const adapter = new Rs232Adapter({
    ...lineDevice(join(dir, 'pty', 'gateway')),
    sink: async (r) => {
      readings.push(r);
    },
    logger: recordingLogger(logs),
  });
  t.teardown(() => adapter.stop());
  await adapter.start();
  t.match(adapter.status(), { state: 'disconnected', lastError: { code: 'ATTACHE_PORT_NOT_OPEN' } });
  const pty = await openPtyPair(join(dir, 'pty'));
  t.teardown(() => pty.close());
  await waitFor('the adapter to connect', () => adapter.status().state === 'connected');
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin' });
  await device.open();
  t.teardown(() => device.close());
  const line = await device.sendReading();
  await waitFor('a reading', () => readings.length === 1);
  t.equal(readings[0]?.raw.toString('latin1'), line);
  t.ok(
    logs.some((e) => e.level === 'warn' && e.msg === 'serial port unavailable, will retry'),
    'the missing port is logged',
  );
});

t.test('socat killed: disconnected; a new pty at the same path: reconnects and delivers', async (t) => {
  const { pty, device, adapter, readings } = await rig(t);
  const first = await device.sendReading();
  await waitFor('the first reading', () => readings.length === 1);
  await device.close();
  await pty.close();
  await waitFor('disconnected', () => adapter.status().state === 'disconnected');
  t.match(adapter.status().lastError, { code: 'ATTACHE_PORT_NOT_OPEN' });
  const again = await openPtyPair(join(pty.gatewayPath, '..'));
  t.teardown(() => again.close());
  await waitFor('reconnected', () => adapter.status().state === 'connected');
  const device2 = new LineDeviceSimulator({ path: again.devicePath, profile: 'nonin', seed: 9 });
  await device2.open();
  t.teardown(() => device2.close());
  const second = await device2.sendReading();
  await waitFor('the second reading', () => readings.length === 2);
  t.same(
    readings.map((r) => r.raw.toString('latin1')),
    [first, second],
  );
});

t.test(
  'a slow sink is called for every line in order, with a bounded number of calls in flight',
  async (t) => {
    let active = 0;
    let most = 0;
    const readings: DeviceReading[] = [];
    const { device, adapter } = await rig(t, {
      sink: async (reading) => {
        readings.push(reading);
        active++;
        most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
      },
    });
    const lines = Array.from(
      { length: 300 },
      (_, i) => `SPO2=${String(i % 100).padStart(3, '0')} HR=${String(i).padStart(3, '0')}`,
    );
    await device.sendRaw(lines.map((l) => `${l}\r\n`).join(''));
    await waitFor('300 readings', () => readings.length === 300);
    t.same(
      readings.map((r) => r.raw.toString('latin1')),
      lines,
    );
    t.ok(most > 1, 'calls overlap, so a cache can commit many lines in one synced write');
    t.ok(most <= 64, `at most 64 calls in flight (saw ${most})`);
    await waitFor('all stored', () => adapter.status().stored === 300);
    t.match(adapter.status(), { frames: 300, stored: 300 });
  },
);

t.test('stop() awaits the sink call in flight, closes the port and stays stopped', async (t) => {
  let release: () => void = () => {};
  let calls = 0;
  const { device, adapter } = await rig(t, {
    sink: async () => {
      calls++;
      if (calls === 1) await new Promise<void>((r) => (release = r));
    },
  });
  await device.sendReading();
  await device.sendReading();
  await waitFor('both sink calls, the first one held', () => calls === 2);
  let stopped = false;
  const stopping = adapter.stop().then(() => {
    stopped = true;
  });
  await new Promise((r) => setTimeout(r, 50));
  t.notOk(stopped, 'stop() waits for the sink call in flight');
  release();
  await stopping;
  t.match(adapter.status(), { state: 'stopped', frames: 2, stored: 2 });
  await device.sendReading();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(adapter.status().frames, 2, 'nothing is read after stop()');
  await adapter.stop();
});

t.test('stop() during the first open leaves the port closed and unlocked', async (t) => {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const adapter = new Rs232Adapter({ ...lineDevice(pty.gatewayPath), sink: async () => {} });
  const starting = adapter.start();
  await adapter.stop();
  await starting;
  t.equal(adapter.status().state, 'stopped');
  const other = new SerialPort({ path: pty.gatewayPath, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => other.open((err) => (err ? reject(err) : resolve())));
  t.ok(other.isOpen, 'another process can open the port: the adapter released it');
  await new Promise<void>((resolve) => other.close(() => resolve()));
});

t.test('7E1 and 8N2 settings reach serialport (SerialPortMock: ptys ignore parity)', async (t) => {
  const opened: SerialPortMock[] = [];
  class RecordingPort extends SerialPortMock {
    constructor(...args: ConstructorParameters<typeof SerialPortMock>) {
      super(...args);
      opened.push(this);
    }
  }
  t.teardown(() => SerialPortMock.binding.reset());
  const cases = [
    { path: '/dev/mock-7e1', baudRate: 19200, dataBits: 7, parity: 'even', stopBits: 1 },
    { path: '/dev/mock-8n2', baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 2 },
  ] as const;
  for (const settings of cases) {
    SerialPortMock.binding.createPort(settings.path);
    const readings: DeviceReading[] = [];
    const adapter = new Rs232Adapter({
      ...lineDevice(settings.path, { ...settings }),
      sink: async (r) => {
        readings.push(r);
      },
      portClass: RecordingPort,
    });
    await adapter.start();
    const port = opened.at(-1);
    t.match(
      port?.port?.openOptions,
      settings,
      `${settings.dataBits}${settings.parity[0]}${settings.stopBits}`,
    );
    port?.port?.emitData('SPO2=097 HR=072\r\n');
    await waitFor('a reading through the mock', () => readings.length === 1);
    await adapter.stop();
    t.equal(port?.isOpen, false, 'stop() closes the port');
  }
});

t.test('reconnect delays double and are spread by the jitter, the same back-off as every loop', async (t) => {
  const dir = t.testdir();
  const logs: Entry[] = [];
  const adapter = new Rs232Adapter({
    ...lineDevice(join(dir, 'absent')),
    sink: async () => {},
    logger: recordingLogger(logs),
    jitter: 0.2,
    random: () => 0.5,
  });
  t.teardown(() => adapter.stop());
  await adapter.start();
  const retries = () => logs.filter((e) => e.msg === 'serial port unavailable, will retry');
  await waitFor('three retries', () => retries().length >= 3);
  t.same(
    retries()
      .slice(0, 3)
      .map((e) => e.retryInMs),
    [90, 180, 360],
    '100, 200, 400 ms, each less 10 %',
  );
});

t.test(
  'a port whose device file goes away is closed and reconnected, even when no hangup reaches it',
  async (t) => {
    // The adapter opens a link of its own to the pty: removing the link takes the device file away
    // while the pty itself stays open, so no close or error ever comes from the port.
    const dir = t.testdir();
    const pty = await openPtyPair(join(dir, 'pty'));
    t.teardown(() => pty.close());
    const link = join(dir, 'ttyUSB0');
    await symlink(pty.gatewayPath, link);
    const clock = new ManualClock();
    const logs: Entry[] = [];
    const { device, driver } = lineDevice(link);
    const adapter = new Rs232Adapter({
      device,
      driver,
      sink: async () => undefined,
      clock,
      logger: recordingLogger(logs),
    });
    t.teardown(() => adapter.stop());
    await adapter.start();
    t.equal(adapter.status().state, 'connected');
    await clock.advance(presenceCheckMs);
    await new Promise((r) => setTimeout(r, 50));
    t.equal(adapter.status().state, 'connected', 'its device file still there: still connected');
    await rm(link);
    const checked = Date.now() + 30_000;
    while (adapter.status().state === 'connected' && Date.now() < checked) {
      await clock.advance(presenceCheckMs);
      await new Promise((r) => setTimeout(r, 20));
    }
    t.equal(adapter.status().state, 'disconnected', 'the device file gone: disconnected');
    t.match(adapter.status().lastError, { code: 'ATTACHE_PORT_NOT_OPEN' });
    t.ok(
      logs.some((e) => /device file of the serial port is gone/.test(String(e.msg))),
      'and it says why',
    );
    await symlink(pty.gatewayPath, link);
    const back = Date.now() + 30_000;
    while (adapter.status().state !== 'connected' && Date.now() < back) {
      await clock.advance(1000);
      await new Promise((r) => setTimeout(r, 20));
    }
    t.equal(adapter.status().state, 'connected', 'back once the device file is');
  },
);
