// End-to-end: `attache probe` and `attache ports` on socat ptys, a regex-line device and
// unplug/replug through a real `attache run`.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AstmSenderSimulator,
  BaudGateRelay,
  cbcMessage,
  LineDeviceSimulator,
  openPtyPair,
  type PtyPair,
} from '@attache/devkit';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';
import { attache, recordsOf, Stack } from './helpers/stack.js';

/** A device pty pair relayed through a baud gate to the pty the probe opens. */
async function gatedLine(t: Test, baudRate: number): Promise<{ device: PtyPair; probe: PtyPair }> {
  const dir = t.testdir();
  const device = await openPtyPair(join(dir, 'device'));
  const probe = await openPtyPair(join(dir, 'probe'));
  const relay = new BaudGateRelay({
    devicePath: device.gatewayPath,
    relayPath: probe.devicePath,
    watchPath: probe.gatewayPath,
    baudRate,
  });
  await relay.start();
  t.teardown(async () => {
    await relay.stop();
    await device.close();
    await probe.close();
  });
  return { device, probe };
}

t.test('probe finds the baud rate and protocol of a Nonin-style line device', async (t) => {
  const { device, probe } = await gatedLine(t, 19200);
  const sim = new LineDeviceSimulator({ path: device.devicePath, profile: 'nonin', intervalMs: 50 });
  await sim.open();
  sim.start();
  t.teardown(async () => {
    sim.stop();
    await sim.close();
  });
  const result = await attache(['probe', probe.gatewayPath, '--seconds', '7', '--json']);
  t.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  t.equal(out.best.score.protocol, 'kv-line');
  t.equal(out.best.setting.baudRate, 19200, 'only the matching speed gives clean lines');
  t.match(out.snippet, {
    adapter: 'rs232',
    port: { path: probe.gatewayPath, baudRate: 19200 },
    format: {
      kind: 'kv-line',
      fields: {
        SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
        HR: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
      },
    },
  });
  t.same(Object.keys(out.snippet.format.fields), ['SPO2', 'HR'], 'the keys the device sent, no placeholder');
  // In the test's directory, which holds the ptys (a second t.testdir() would remove them).
  const config = join(t.testdirName, 'config.json');
  await writeFile(
    config,
    JSON.stringify({ version: 1, gateway: { id: 'gw-probe' }, devices: [out.snippet] }),
  );
  const valid = await attache(['config', 'validate', '--config', config]);
  t.equal(valid.code, 0, `the suggestion is a valid device: ${valid.stderr}`);

  const text = await attache(['probe', probe.gatewayPath, '--seconds', '3.5']);
  t.match(text.stdout, /KEY=VALUE lines at 19200 baud/, text.stderr);
  t.match(text.stdout, /keys heard: SPO2 HR/);
  t.match(
    text.stderr,
    // The oximeter sends `SPO2=--- HR=---` now and then (no pulse found), as a real one does.
    /^ {2}19200 baud 8N1: \d+ bytes.*\n {6}heard: "SPO2=(\d{3}|---) HR=(\d{3}|---)"/m,
    'what it hears, while listening',
  );
  t.match(text.stderr, /^ {2}9600 baud 8N1: /m, 'every setting tried is shown');
});

t.test('probe names a missing port and a busy one, rather than blaming the cable', async (t) => {
  const missing = await attache(['probe', '/dev/ttyUSB-attache-none', '--seconds', '1']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, '/dev/ttyUSB-attache-none does not exist: is the adapter plugged in');
  t.notMatch(missing.stdout + missing.stderr, /cable/);

  const pty = await openPtyPair(join(t.testdir(), 'busy'));
  t.teardown(() => pty.close());
  const holder = new SerialPort({ path: pty.gatewayPath, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => holder.open((err) => (err ? reject(err) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const busy = await attache(['probe', pty.gatewayPath, '--seconds', '1']);
  t.equal(busy.code, 1);
  t.match(busy.stderr, `${pty.gatewayPath} is in use by another process: `);
  t.match(busy.stderr, `pid ${process.pid} (${process.execPath})`, 'and names who holds it');

  const json = await attache(['probe', '/etc/hostname', '--seconds', '1', '--json']);
  t.equal(json.code, 1);
  t.match(JSON.parse(json.stdout).problem, { kind: 'not-a-device', advice: /is not a serial port/ });
});

t.test('probe with --answer-enq sees ASTM frames; a silent port is reported as nothing', async (t) => {
  const { device, probe } = await gatedLine(t, 38400);
  const sender = new AstmSenderSimulator({
    path: device.devicePath,
    ackTimeoutMs: 150,
    maxRetries: 0,
    busyRetryMs: 0,
  });
  await sender.open();
  let running = true;
  const loop = (async () => {
    while (running) await sender.send(cbcMessage({ count: 1 })).catch(() => undefined);
  })();
  t.teardown(async () => {
    running = false;
    await loop;
    await sender.close();
  });
  const result = await attache(['probe', probe.gatewayPath, '--seconds', '7', '--answer-enq', '--json']);
  const out = JSON.parse(result.stdout);
  t.equal(out.best.score.protocol, 'astm');
  t.equal(out.best.setting.baudRate, 38400);
  t.ok(out.best.score.validFrames > 0, 'frames with valid checksums after the ENQ was ACKed');
  t.same(out.snippet.format, { kind: 'astm' });

  const quiet = await openPtyPair(join(t.testdir(), 'quiet'));
  t.teardown(() => quiet.close());
  const none = await attache(['probe', quiet.gatewayPath, '--seconds', '1.4']);
  t.equal(none.code, 2, 'exit 2 when nothing was recognized');
  t.match(none.stdout, /Nothing recognized/);
});

t.test(
  'ports lists a pty behind a by-id-like name, the device configured on it and who holds it',
  async (t) => {
    const dir = t.testdir();
    const pty = await openPtyPair(join(dir, 'pty'));
    t.teardown(() => pty.close());
    const byId = join(dir, 'by-id');
    await mkdir(byId);
    const link = join(byId, 'usb-FTDI_FT232R_USB_UART_SIM1-if00-port0');
    await symlink(pty.gatewayPath, link);
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        gateway: { id: 'gw-ports', dataDir: join(dir, 'data') },
        devices: [{ id: 'spo2-bed3', adapter: 'rs232', port: { path: link }, format: { kind: 'astm' } }],
      }),
    );
    const holder = new SerialPort({ path: pty.gatewayPath, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => holder.open((err) => (err ? reject(err) : resolve())));
    t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const result = await attache(['ports', '--json', '--link-dir', byId, '--config', config]);
    t.equal(result.code, 0, result.stderr);
    const entry = (
      JSON.parse(result.stdout) as { links: string[]; device?: string; heldBy: { pid: number }[] }[]
    ).find((p) => p.links.includes(link));
    t.ok(entry, 'the pty is listed under its stable name');
    t.equal(entry?.device, 'spo2-bed3');
    t.ok(
      entry?.heldBy.some((h) => h.pid === process.pid),
      'the process holding it open is shown',
    );
    const text = await attache(['ports', '--link-dir', byId, '--config', config]);
    t.match(text.stdout, `name:   ${link}`);
    t.match(text.stdout, 'device: spo2-bed3 (configured)');
  },
);

t.test('a regex-line device is read; unplug and replug of its pty recovers', async (t) => {
  const stack = await Stack.start(t);
  const config = stack.config() as Record<string, unknown>;
  config.devices = [
    {
      id: 'spo2-regex',
      adapter: 'rs232',
      port: { path: stack.pty.gatewayPath, reconnectMs: 200 },
      format: {
        kind: 'regex-line',
        pattern: '^(?<time>\\d\\d:\\d\\d:\\d\\d) SpO2 (?<spo2>\\d+|-+)% PR (?<pr>\\d+|-+)$',
        timestamp: 'HH:mm:ss',
        fields: {
          spo2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
          pr: { code: 'MDC_PULS_OXIM_PULS_RATE', unit: '/min' },
        },
      },
    },
  ];
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  await stack.device.sendRaw('10:15:00 SpO2 097% PR 072\r\n');
  await stack.device.sendRaw('10:15:01 SpO2 ---% PR ---\r\n');
  await stack.device.sendRaw('SPO2=097 HR=072\r\n');
  await stack.statusUntil((s) => s.adapters[0]?.stored === 2 && s.adapters[0]?.malformed === 1);

  await stack.device.close();
  await stack.pty.close();
  // The log, not a status poll: the adapter may retry (and reconnect) faster than a poll sees it.
  await gateway.waitForLog((l) => l.msg === 'adapter state' && l.state === 'disconnected');
  const again = await openPtyPair(join(stack.dir, 'pty'));
  t.teardown(() => again.close());
  const device = new LineDeviceSimulator({ path: again.devicePath, profile: 'nonin' });
  await device.open();
  t.teardown(() => device.close());
  await stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
  await device.sendRaw('10:15:09 SpO2 098% PR 070\r\n');
  await stack.statusUntil((s) => s.adapters[0]?.stored === 3);

  const dashboard = await stack.subscribe();
  const sync = await stack.run('sync', '--json');
  const records = recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000));
  const values = records.map((r) => [
    r.deviceTime,
    ...(r.observations as { value: unknown }[]).map((o) => o.value),
  ]);
  t.same(
    values,
    [
      ['10:15:00', 97, 72],
      ['10:15:01', null, null],
      ['10:15:09', 98, 70],
    ],
    'named groups → observations, the time group → deviceTime, across the replug',
  );
  t.match(JSON.stringify(gateway.logs), /line does not match the pattern/);
});

t.test(
  'attache ports --rescan: a port plugged in is opened at once, not at the next back-off retry',
  async (t) => {
    const stack = await Stack.start(t);
    const config = stack.config() as Record<string, unknown>;
    const path = join(stack.dir, 'later', 'gateway');
    // The first retry would come 60 s after the failed open: longer than this test may take.
    config.devices = [
      {
        id: 'spo2-later',
        adapter: 'rs232',
        port: { path, reconnectMs: 60_000 },
        format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
      },
    ];
    await stack.writeConfig(config);
    const idle = await stack.run('ports', '--rescan');
    t.equal(idle.code, 0, idle.stderr);
    t.match(idle.stdout, /the gateway is not running/);

    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'serial port unavailable, will retry');
    const early = await stack.run('ports', '--rescan');
    t.match(
      early.stdout,
      /gateway retried the ports of spo2-later/,
      'a waiting adapter retries even with no port yet',
    );
    // That retry fails too (no port yet); only once it has may the cable be plugged in.
    const tried = gateway.logs.findIndex((l) => l.msg === 'port rescan: trying the port now');
    await gateway.waitForLog(
      (l) => gateway.logs.indexOf(l) > tried && l.msg === 'serial port unavailable, will retry',
    );

    const pty = await openPtyPair(join(stack.dir, 'later'));
    t.teardown(() => pty.close());
    const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin' });
    await device.open();
    t.teardown(() => device.close());
    const plugged = await stack.run('ports', '--rescan');
    t.equal(plugged.code, 0, plugged.stderr);
    t.match(plugged.stdout, /gateway retried the ports of spo2-later/);
    await gateway.waitForLog((l) => l.msg === 'adapter state' && l.state === 'connected', 30_000);
    await device.sendReading();
    const status = await stack.statusUntil((s) => s.adapters[0]?.stored === 1, 30_000);
    t.equal(status.adapters[0]?.state, 'connected', 'read without a restart and without waiting 60 s');
    const connected = await stack.run('ports', '--rescan');
    t.match(connected.stdout, /no adapter was waiting for a port/);
  },
);
