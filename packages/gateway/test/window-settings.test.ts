// Shadow settings survive a power cut: the file is fsynced before it replaces the old one, and its
// directory after, so a cut keeps the old settings or the new, never an empty or missing file.
import * as fs from 'node:fs/promises';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '@attache/core';
import t from 'tap';

t.test('applied settings are fsynced, renamed into place, and their directory fsynced', async (t) => {
  const dir = t.testdir();
  const steps: string[] = [];
  const name = (path: unknown) =>
    String(path) === dir ? 'dir' : String(path).startsWith(dir) ? 'file' : 'other';
  const open: typeof fs.open = async (path, ...rest) => {
    const handle = await fs.open(path, ...rest);
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      steps.push(`fsync ${name(path)}`);
      await sync();
    };
    return handle;
  };
  const rename: typeof fs.rename = async (from, to) => {
    steps.push(`rename ${name(to)}`);
    await fs.rename(from, to);
  };
  const { RemoteSettings } = await t.mockImport<typeof import('../src/window-settings.js')>(
    '../src/window-settings.js',
    { 'node:fs/promises': { ...fs, open, rename } },
  );
  const local = validateConfig({
    version: 1,
    gateway: { id: 'gw-s', dataDir: dir },
    devices: [{ id: 'd', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } }],
    uplink: { endpoint: '127.0.0.1', certFile: 'c', keyFile: 'k' },
  });
  const settings = new RemoteSettings(dir);
  const { outcome } = await settings.apply(local, { window: { everySeconds: 600 } }, 3);
  t.same(outcome.refused, []);
  t.same(steps, ['fsync file', 'rename file', 'fsync dir'], 'fsync, rename, fsync the directory');
  const path = join(dir, 'remote-settings.json');
  t.match(JSON.parse(await readFile(path, 'utf8')), {
    desiredVersion: 3,
    applied: { window: { everySeconds: 600 } },
  });
  t.equal((await stat(path)).mode & 0o777, 0o600, 'readable by the service only');
});
