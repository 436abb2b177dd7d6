import { join } from 'node:path';
import { serialLink } from '@attache/adapter-rs232';
import { openPtyPair } from '@attache/devkit';
import { SerialPort } from 'serialport';
import t from 'tap';

function opened(path: string, lock = true): Promise<SerialPort> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false, lock });
  return new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve(port))));
}

t.test('a serial port as a byte link: writes reach the device; closed, it drops them', async (t) => {
  const pty = await openPtyPair(join(t.testdir(), 'pty'));
  t.teardown(() => pty.close());
  const port = await opened(pty.gatewayPath);
  const device = await opened(pty.devicePath, false);
  t.teardown(
    () => new Promise<void>((resolve) => (device.isOpen ? device.close(() => resolve()) : resolve())),
  );
  const link = serialLink(port);
  t.equal(link.name, pty.gatewayPath);
  t.ok(link.open);
  const received: Buffer[] = [];
  device.on('data', (chunk: Buffer) => received.push(chunk));
  t.ok(link.write(Buffer.from([0x06])));
  const deadline = Date.now() + 30_000;
  while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.same(Buffer.concat(received), Buffer.from([0x06]), 'the device got the byte');
  link.pause();
  t.ok(port.isPaused());
  link.resume();
  t.notOk(port.isPaused());
  const closed = new Promise((resolve) => port.once('close', resolve));
  link.close();
  await closed;
  t.notOk(link.open);
  t.notOk(link.write(Buffer.from([0x15])), 'a closed link drops writes');
  link.close();
});
