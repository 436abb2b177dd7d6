import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineDeviceSimulator, openPtyPair, type PtyPair } from '@attache/devkit';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';

/** Opens the gateway end and collects what arrives. */
async function reader(
  t: Test,
  path: string,
): Promise<{ text: () => string; until: (n: number) => Promise<void> }> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  t.teardown(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
  let received = '';
  port.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  const until = async (lines: number): Promise<void> => {
    while (received.split('\r\n').length - 1 < lines) await new Promise((r) => setTimeout(r, 10));
  };
  return { text: () => received, until };
}

async function pair(t: Test): Promise<PtyPair> {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  return pty;
}

t.test('a pty pair carries bytes from the device end to the gateway end; close removes it', async (t) => {
  const pty = await pair(t);
  t.ok(existsSync(pty.gatewayPath) && existsSync(pty.devicePath), 'both links exist');
  const gateway = await reader(t, pty.gatewayPath);
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin' });
  await device.open();
  t.teardown(() => device.close());
  await device.sendRaw(Buffer.from([0x00, 0xff, 0x0d, 0x0a]));
  await gateway.until(1);
  t.same(Buffer.from(gateway.text(), 'latin1'), Buffer.from([0x00, 0xff, 0x0d, 0x0a]), 'raw bytes as is');
  await pty.close();
  t.notOk(existsSync(pty.gatewayPath) || existsSync(pty.devicePath), 'the ptys vanish with socat');
});

t.test('the nonin profile sends Nonin lines ending CR LF, deterministically', async (t) => {
  const pty = await pair(t);
  const gateway = await reader(t, pty.gatewayPath);
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', seed: 2 });
  await device.open();
  t.teardown(() => device.close());
  const sent: string[] = [];
  for (let i = 0; i < 40; i++) sent.push(await device.sendReading());
  await gateway.until(40);
  t.equal(gateway.text(), sent.map((line) => `${line}\r\n`).join(''), 'what was sent arrives, CR LF each');
  t.equal(device.sent, 40);
  const nonin = /^SPO2=(\d{3}|---) HR=(\d{3}|---)\*?$/;
  t.same(
    sent.filter((line) => !nonin.test(line)),
    [],
    'every line has the Nonin layout',
  );
  t.ok(
    sent.some((line) => line.includes('---')),
    'some lines carry no data',
  );
  t.ok(
    sent.some((line) => line.endsWith('*')),
    'some lines carry the event marker',
  );
  await device.close();
  const again = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', seed: 2 });
  await again.open();
  t.teardown(() => again.close());
  const repeat: string[] = [];
  for (let i = 0; i < 40; i++) repeat.push(await again.sendReading());
  t.same(repeat, sent, 'the same seed gives the same values');
});

t.test('the masimo profile sends ASCII 1 lines with date, time and status words', async (t) => {
  const pty = await pair(t);
  const gateway = await reader(t, pty.gatewayPath);
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'masimo', intervalMs: 20 });
  await device.open();
  t.teardown(() => device.close());
  device.start();
  await gateway.until(5);
  device.stop();
  const lines = gateway.text().split('\r\n').slice(0, 5);
  t.ok(device.sent >= 5, 'start() keeps sending');
  for (const line of lines) {
    t.match(
      line,
      /^\d{2}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} SN=\d{10} SPO2=(\d{3}|---)% BPM=(\d{3}|---) PI=(\d{2}\.\d{2}|--\.--)% .* ALARM=[0-9A-F]{4} EXC=[0-9A-F]{6}$/,
    );
  }
});

t.test('writing before open() fails with ATTACHE_PORT_NOT_OPEN', async (t) => {
  const device = new LineDeviceSimulator({ path: '/nonexistent/tty', profile: 'nonin' });
  await t.rejects(device.sendReading(), { code: 'ATTACHE_PORT_NOT_OPEN' });
  await t.rejects(device.open(), 'a missing path cannot be opened');
});

t.test('simulate-cli runs a simulator until SIGTERM', async (t) => {
  const pty = await pair(t);
  const gateway = await reader(t, pty.gatewayPath);
  const cli = fileURLToPath(new URL('../dist/simulate-cli.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [cli, '--path', pty.devicePath, '--profile', 'nonin', '--interval', '20'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await gateway.until(3);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 on SIGTERM');
  t.match(gateway.text(), /^SPO2=/);
  t.match(out, /stopped after \d+ lines/);
});

t.test('simulate-cli without --path prints its usage and exits 2', async (t) => {
  const cli = fileURLToPath(new URL('../dist/simulate-cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.equal(code, 2);
  t.match(err, /usage: simulate-cli --path/);
});

t.test('simulate-cli runs a MEDIBUS ventilator and an IntelliVue monitor that answer requests', async (t) => {
  const cli = fileURLToPath(new URL('../dist/simulate-cli.js', import.meta.url));
  for (const profile of ['medibus', 'intellivue'] as const) {
    const pty = await pair(t);
    const child = spawn(process.execPath, [cli, '--path', pty.devicePath, '--profile', profile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    while (!out.includes('answering')) await new Promise((r) => setTimeout(r, 10));
    if (profile === 'medibus') {
      const port = new SerialPort({ path: pty.gatewayPath, baudRate: 19200, autoOpen: false });
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
      let received = '';
      port.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
      });
      port.write(Buffer.from('\x1bQ6C\r', 'latin1'));
      while (!received.includes('\x01Q52\r')) await new Promise((r) => setTimeout(r, 10));
      await new Promise<void>((resolve) => port.close(() => resolve()));
      t.pass('the ventilator answers an ICC');
    }
    child.kill('SIGTERM');
    t.equal(await exited, 0, `${profile}: exits 0 on SIGTERM`);
    t.match(out, `simulator: ${profile} on`);
  }
});
