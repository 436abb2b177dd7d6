// End-to-end: `attache run` with the technician page on, a simulated oximeter on a socat pty, the
// broker: a technician logs in with the box secret, sees the device and its live readings, and opens
// a window that uploads them; attaches a second device from the page.
import { execFile, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getFreePort, LineDeviceSimulator, openPtyPair } from '@attache/devkit';
import t, { type Test } from 'tap';
import { bin, Stack } from './helpers/stack.js';
import { TechnicianClient } from './helpers/technician-client.js';

const execFileAsync = promisify(execFile);

t.test('log in with the box secret, see live readings, open a window', async (t) => {
  const stack = await Stack.start(t);
  const port = await getFreePort();
  await stack.writeConfig({ ...stack.config(), technician: { listen: ['127.0.0.1'], port } });
  const shown = await stack.run('technician', 'secret');
  t.equal(shown.code, 0, shown.stderr);
  const secret = shown.stdout.trim();
  const telemetry = await stack.subscribe();
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'technician page listening');
  await gateway.waitForLog((l) => l.msg === 'gateway started');

  const page = new TechnicianClient(port);
  t.equal((await page.login('Dana (biomed)', 'AAAA-BBBB-CCCC-DDDD')).status, 401, 'a wrong secret');
  t.equal((await page.login('Dana (biomed)', secret)).status, 200);
  const status = await page.call('GET', '/api/status');
  t.match(status.json, { gatewayId: 'gw-e2e-1', adapters: [{ deviceId: 'spo2-bed7', adapter: 'rs232' }] });
  t.equal(status.json.canExport, false, 'no export recipient: no export button');
  const noExport = await page.call('POST', '/api/export', {});
  t.match(noExport.json, { result: { records: 0, error: /no export recipient is configured/ } });

  const events = await page.events();
  t.teardown(() => events.close());
  t.equal(events.status, 200);
  const sentAt = Date.now();
  const line = await stack.device.sendReading();
  const reading = await events.next();
  t.comment(`reading shown ${Date.now() - sentAt} ms after the device sent it`);
  const [spo2] = /SPO2=(\d+|---)/.exec(line)?.slice(1) ?? [];
  t.match(reading, {
    deviceId: 'spo2-bed7',
    observations: [
      {
        code: 'MDC_PULS_OXIM_SAT_O2',
        system: 'MDC',
        unit: '%',
        value: spo2 === '---' ? null : Number(spo2),
      },
      { code: 'MDC_PULS_OXIM_PULS_RATE', unit: '/min' },
    ],
  });
  t.same(Object.keys(reading).sort(), ['capturedAt', 'deviceId', 'observations'], 'nothing but the reading');

  const after = await page.call('GET', '/api/status');
  const device = (after.json.adapters as Record<string, unknown>[])[0];
  t.match(device, { state: 'connected', lastReadingAt: reading.capturedAt });

  const window = await page.call('POST', '/api/window', {});
  t.match(window.json, { outcome: 'drained' });
  t.ok((window.json.records as number) >= 1, 'the reading went up');
  await telemetry.waitFor(1, 30_000);

  const doctor = (await page.call('GET', '/api/doctor')).json as unknown as {
    check: string;
    status: string;
  }[];
  t.match(doctor[0], { check: 'config', status: 'ok' });
  t.ok(
    doctor.some((c) => c.check === 'gateway' && c.status === 'ok'),
    'the gateway answered its own doctor',
  );
  t.ok(
    doctor.some((c) => c.check.startsWith('self-test')),
    'the crypto self-test ran',
  );

  const screen = await stack.run('console', '--once');
  t.equal(screen.code, 0, screen.stderr);
  t.match(screen.stdout, /Attaché gateway gw-e2e-1/);
  t.match(screen.stdout, /spo2-bed7 {2}connected since/);
  t.match(screen.stdout, `http://127.0.0.1:${port}/`);
  t.match(screen.stdout, `Box secret: ${secret}`);
  t.notMatch(screen.stdout, /MDC_|SPO2=/, 'no reading on the console');

  await page.call('POST', '/api/logout', {});
  t.equal((await page.call('GET', '/api/status')).status, 401, 'logged out');
  const actions = gateway.logs.filter((l) => l.msg === 'technician action').map((l) => [l.who, l.action]);
  t.same(actions, [
    ['Dana (biomed)', 'login'],
    ['Dana (biomed)', 'export'],
    ['Dana (biomed)', 'window.open'],
    ['Dana (biomed)', 'logout'],
  ]);
  const text = JSON.stringify(gateway.logs);
  t.notMatch(text, secret, 'the secret is not logged');
  t.notMatch(text, /MDC_PULS_OXIM_SAT_O2/, 'no reading is logged');
});

t.test(
  'attach a second device from the page: probe, a bad config refused at its field, applied, its readings',
  async (t) => {
    const stack = await Stack.start(t);
    const port = await getFreePort();
    await stack.writeConfig({ ...stack.config(), technician: { listen: ['127.0.0.1'], port } });
    const secret = (await stack.run('technician', 'secret')).stdout.trim();
    const pty = await openPtyPair(join(stack.dir, 'pty2'));
    const second = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', intervalMs: 100 });
    await second.open();
    t.teardown(async () => {
      await second.close();
      await pty.close();
    });
    second.start();
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const page = new TechnicianClient(port);
    await page.login('Sam', secret);

    const ports = await page.call('GET', '/api/ports');
    t.equal(ports.status, 200);
    t.ok(Array.isArray(ports.json), 'the serial ports as a list');

    const probe = await page.call('POST', '/api/probe', {
      path: await realpath(pty.gatewayPath),
      seconds: 3,
    });
    t.match(probe.json, { result: { recognized: 'KEY=VALUE lines', keys: ['SPO2', 'HR'] } });
    const suggested = (probe.json.result as { suggested: Record<string, unknown> }).suggested;
    t.match(suggested, {
      adapter: 'rs232',
      format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2' } } },
    });

    const current = (await page.call('GET', '/api/config')).json.config as { devices: unknown[] };
    const device = {
      ...suggested,
      id: 'spo2-bed8',
      port: { ...(suggested.port as object), path: pty.gatewayPath },
    };
    const bad = {
      ...current,
      devices: [...current.devices, { ...device, port: { path: pty.gatewayPath, baudRate: 12345 } }],
    };
    const refused = await page.call('POST', '/api/config/apply', { config: bad });
    t.match(
      refused.json,
      { applied: false, issues: [{ path: '/devices/1/port/baudRate' }] },
      'refused at its field',
    );
    t.equal(
      ((await page.call('GET', '/api/status')).json.adapters as unknown[]).length,
      1,
      'nothing changed',
    );

    const events = await page.events();
    t.teardown(() => events.close());
    const applied = await page.call('POST', '/api/config/apply', {
      config: { ...current, devices: [...current.devices, device] },
    });
    t.same(applied.json, { applied: true, issues: [] });
    for (;;) {
      const reading = await events.next();
      if (reading.deviceId === 'spo2-bed8') break;
    }
    const status = await page.call('GET', '/api/status');
    t.match(status.json.adapters, [{ deviceId: 'spo2-bed7' }, { deviceId: 'spo2-bed8', state: 'connected' }]);
    const actions = gateway.logs.filter((l) => l.msg === 'technician action').map((l) => l.action);
    t.same(actions, ['login', 'probe', 'config.apply', 'config.apply']);
  },
);

t.test('without a technician section nothing listens, and rotating the secret says so', async (t) => {
  const stack = await Stack.start(t);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  t.notOk(gateway.logs.some((l) => l.msg === 'technician page listening'));
  const first = await stack.run('technician', 'secret');
  const rotated = await stack.run('technician', 'rotate-secret');
  t.equal(rotated.code, 0, rotated.stderr);
  t.not(rotated.stdout.trim(), first.stdout.trim(), 'a new secret');
  t.match(rotated.stderr, /every technician page session made with the old secret has ended/);
  t.match(rotated.stderr, /the technician page is off/);
});

t.test('attache watch: live de-identified readings as JSON lines, ending with the client', async (t) => {
  const stack = await Stack.start(t);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const watch = spawn(process.execPath, [bin, 'watch', '--config', stack.configPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => watch.kill());
  const first = new Promise<string>((resolve) => {
    let text = '';
    watch.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
  });
  // The watch is subscribed once the gateway has it on its socket: send until a line arrives.
  const sender = setInterval(() => void stack.device.sendReading(), 200);
  const line = JSON.parse(await first);
  clearInterval(sender);
  t.match(line, {
    deviceId: 'spo2-bed7',
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', name: 'SpO₂', unit: '%' },
      { name: 'Pulse rate (oximeter)' },
    ],
  });
  t.same(Object.keys(line).sort(), ['capturedAt', 'deviceId', 'observations']);
  watch.kill();
  t.equal((await stack.run('status', '--json')).code, 0, 'the gateway answers on after the watch went');
});

t.test(
  'export into a mounted stick (technician.exportDir) while the gateway reads on; it imports',
  async (t) => {
    const stick = join(t.testdir(), 'stick');
    const { stack, gateway, page, events, key } = await exportRig(t, { exportDir: stick });
    const absent = await page.call('POST', '/api/export', {});
    t.match(absent.json, { result: { records: 0, error: `no USB stick at ${stick}: plug one in` } });
    await mkdir(stick);
    const done = await page.call('POST', '/api/export', {});
    const result = done.json.result as { file: string; records: number };
    t.equal(result.records, 3);
    t.same(await readdir(stick), [result.file.slice(stick.length + 1)], 'one file on the stick');
    await stack.device.sendReading();
    await events.next();
    t.pass('the gateway read on after the export');
    const imported = await stack.run('cache', 'import', result.file, '--key', key, '--stdout');
    t.equal(imported.code, 0, imported.stderr);
    t.equal(imported.stdout.trim().split('\n').length, 3, 'the three records, verified and decrypted');
    const actions = gateway.logs.filter((l) => l.msg === 'technician action').map((l) => l.action);
    t.same(actions, ['login', 'export', 'export']);
  },
);

t.test(
  "export onto the USB stick's FAT partition with mtools: refused without a stick or room, then it imports",
  async (t) => {
    // A FAT image stands in for /dev/attache-usb, the stick's partition.
    const stick = join(t.testdir(), 'stick.img');
    const { stack, gateway, page, events, key } = await exportRig(t, { exportDevice: stick });

    const absent = await page.call('POST', '/api/export', {});
    t.same(absent.json, {
      result: { records: 0, code: 'ATTACHE_NO_STICK', error: `no USB stick at ${stick}: plug one in` },
    });

    await tool('truncate', '-s', '1M', stick);
    await tool('mkfs.vfat', stick);
    const free = Number(
      (/([\d ]+) bytes free/.exec(await tool('mdir', '-i', stick, '::'))?.[1] ?? '').replace(/ /g, ''),
    );
    const filler = join(stack.dir, 'filler.bin');
    await writeFile(filler, Buffer.alloc(free, 1));
    await tool('mcopy', '-i', stick, filler, '::/FILLER.BIN');
    const full = await page.call('POST', '/api/export', {});
    t.match(full.json, { result: { records: 0, code: 'ATTACHE_STICK_REFUSED', error: /is full/ } });
    t.same(await onStick(stick), ['::/FILLER.BIN'], 'nothing of the export left on a full stick');

    await tool('mdel', '-i', stick, '::/FILLER.BIN');
    const done = await page.call('POST', '/api/export', {});
    const result = done.json.result as { file: string; records: number; sha256: string };
    t.equal(result.records, 3);
    t.match(result.file, /^gw-e2e-1-.*\.attache$/);
    t.same(await onStick(stick), [`::/${result.file}`], 'one file on the stick');
    await stack.device.sendReading();
    await events.next();
    t.pass('the gateway read on after the export');

    const back = join(stack.dir, 'taken-off.attache');
    await tool('mcopy', '-i', stick, `::/${result.file}`, back);
    t.equal(
      createHash('sha256')
        .update(await readFile(back))
        .digest('hex'),
      result.sha256,
      'identical to the staged export',
    );
    const imported = await stack.run('cache', 'import', back, '--key', key, '--stdout');
    t.equal(imported.code, 0, imported.stderr);
    t.equal(imported.stdout.trim().split('\n').length, 3, 'the three records, verified and decrypted');
    t.same(await readdir(join(stack.dir, 'data', 'exports')).catch(() => []), [], 'no staged copy left');
    const actions = gateway.logs.filter((l) => l.msg === 'technician action').map((l) => l.action);
    t.same(actions, ['login', 'export', 'export', 'export']);
  },
);

/**
 * A running gateway with the page on (plus `technician`), an export recipient and its key, a
 * technician logged in, and three readings stored and seen on the page's live feed.
 */
async function exportRig(t: Test, technician: Record<string, string>) {
  const stack = await Stack.start(t);
  const port = await getFreePort();
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = join(stack.dir, 'recipient.pub.pem');
  const key = join(stack.dir, 'recipient.pem');
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const config = stack.config();
  await stack.writeConfig({
    ...config,
    cache: { ...(config.cache as object), exportRecipientFile: pub },
    technician: { listen: ['127.0.0.1'], port, ...technician },
  });
  const secret = (await stack.run('technician', 'secret')).stdout.trim();
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const page = new TechnicianClient(port);
  await page.login('Sam', secret);
  t.equal((await page.call('GET', '/api/status')).json.canExport, true);
  const events = await page.events();
  t.teardown(() => events.close());
  for (let i = 0; i < 3; i++) {
    await stack.device.sendReading();
    await events.next();
  }
  return { stack, gateway, page, events, key };
}

async function tool(command: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(command, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  return stdout;
}

async function onStick(image: string): Promise<string[]> {
  const listing = await tool('mdir', '-i', image, '-/', '-b', '::').catch(() => '');
  return listing.split('\n').filter((l) => l.startsWith('::/'));
}
