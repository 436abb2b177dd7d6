import { join } from 'node:path';
import { loadOrCreateKeyring } from '@attache/cache';
import { type ReadingSink, validateConfig } from '@attache/core';
import { type LogEntry, openPtyPair, recordingLogger } from '@attache/devkit';
import { UpStore } from '@attache/files-up';
import { SerialPort } from 'serialport';
import t, { type Test } from 'tap';
import { createAdapters } from '../src/adapters.js';

const files = {
  upload: { credentialsEndpoint: 'c.example', roleAlias: 'r', bucket: 'bkt', region: 'eu-west-1' },
};
const uplink = { endpoint: 'iot.example', certFile: '/c', keyFile: '/k', caFile: '/ca' };
const readings = Buffer.from('HR=72\r\nSPO2=98\r\n');
const log = Buffer.from('LOG BEGIN\r\nE42 occlusion\r\nLOG END\r\n');

/** A kv-line device with `capture` on a socat pty; the test writes the device's end. */
async function rig(t: Test, capture: Record<string, unknown>, withStore: boolean) {
  const dir = t.testdir();
  const pty = await openPtyPair(join(dir, 'pty'));
  const store = new UpStore({
    path: join(dir, 'files-up'),
    keyring: await loadOrCreateKeyring(join(dir, 'key')),
  });
  await store.open();
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-1', dataDir: dir },
    devices: [
      {
        id: 'pump-1',
        adapter: 'rs232',
        port: { path: pty.gatewayPath, baudRate: 115200 },
        format: { kind: 'kv-line', fields: { HR: { code: 'X', unit: '/min' } } },
        capture,
      },
    ],
    files,
    uplink,
  });
  const stored: string[] = [];
  const sink: ReadingSink = async (reading) => {
    stored.push(reading.deviceId);
  };
  const entries: LogEntry[] = [];
  const adapters = await createAdapters(
    config,
    sink,
    recordingLogger(entries),
    () => false,
    withStore ? store : undefined,
  );
  for (const adapter of adapters) await adapter.start();
  const device = new SerialPort({ path: pty.devicePath, baudRate: 115200, autoOpen: false, lock: false });
  await new Promise<void>((ok, fail) => device.open((e) => (e ? fail(e) : ok())));
  t.teardown(async () => {
    for (const adapter of adapters) await adapter.stop();
    await new Promise((ok) => device.close(ok));
    await pty.close();
  });
  const print = (bytes: Buffer) =>
    new Promise<void>((ok) => device.write(bytes, () => device.drain(() => ok())));
  /** Polls until `done` holds (the adapter reads the pty on its own). */
  const until = async (done: () => boolean | Promise<boolean>) => {
    while (!(await done())) await new Promise((r) => setTimeout(r, 20));
  };
  return { store, stored, entries, print, until };
}

const startEnd = { start: '^LOG BEGIN', end: '^LOG END' };

t.test('instead: the port only captures files, its lines are no readings', async (t) => {
  // No end line: the file ends at maxBytes.
  const capture = { start: '^LOG BEGIN', maxBytes: 1024, idleSeconds: 0, mode: 'instead' };
  const { store, stored, print, until } = await rig(t, capture, true);
  const long = Buffer.concat([log, Buffer.alloc(2000, 'x')]);
  await print(Buffer.concat([readings, long, readings]));
  await until(async () => (await store.list()).length === 1);
  const [file] = await store.list();
  if (file) t.ok((await store.read(file)).equals(long.subarray(0, 1024)), 'its first maxBytes, as they came');
  t.match(file, { deviceId: 'pump-1', source: /^serial:/ });
  t.same(stored, [], 'no readings');
});

t.test('alongside: the readings still go to the sink', async (t) => {
  const { store, stored, print, until } = await rig(t, startEnd, true);
  await print(Buffer.concat([readings, log, readings]));
  await until(async () => (await store.list()).length === 1 && stored.length === 4);
  t.same(stored, ['pump-1', 'pump-1', 'pump-1', 'pump-1']);
});

t.test('without a running store the device keeps its own driver, and says why', async (t) => {
  const { store, stored, print, until, entries } = await rig(t, startEnd, false);
  t.ok(entries.some((e) => e.msg?.startsWith('capture needs files up running') && e.deviceId === 'pump-1'));
  await print(Buffer.concat([readings, log, readings]));
  await until(() => stored.length === 4);
  t.same(await store.list(), [], 'nothing captured');
});
