// `attache files list` and `attache files export`: what a technician sees of files delivered
// through AWS IoT Jobs, copied verified to a USB stick with a manifest.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { profileFormat } from '@attache/devkit';
import { FileDeliveryHandler } from '@attache/jobs';
import t from 'tap';
import { JobsWorld, sha256 } from './helpers/jobs-fixtures.js';
import { attache } from './helpers/stack.js';

// The AWS CRT's MQTT clients can hold the event loop until garbage collection: the root test
// ends after its subtests (t.end() below), not when the loop drains, and the process exits then.
t.on('complete', () => setImmediate(() => process.exit()));

t.test('delivered files are listed and exported verified, with a manifest', async (t) => {
  const world = await JobsWorld.start(t);
  const configPath = join(world.dir, 'config.json');
  const config = {
    version: 1,
    gateway: { id: 'gw-jobs-1', dataDir: world.dataDir },
    devices: [
      { id: 'pump-3', adapter: 'rs232', port: { path: '/dev/ttyUSB9' }, format: profileFormat('nonin') },
    ],
  };
  await writeFile(configPath, JSON.stringify(config));
  const druglib = randomBytes(300_000);
  const settings = Buffer.from('{"rate":"ml/h"}\n');
  const job = (name: string, content: Buffer, deviceId?: string) => ({
    schemaVersion: 2,
    operation: 'file-delivery',
    name,
    ...(deviceId ? { deviceId } : {}),
    artifact: world.artifact(content, { url: world.server.serve(name, content) }),
  });
  await world.addJob('lib', job('druglib-2026.bin', druglib, 'pump-3'));
  await world.addJob('settings', job('settings.json', settings));
  const result = await world.window({ 'file-delivery': new FileDeliveryHandler(world.files) });
  t.same(
    result.jobs.map((j) => j.status),
    ['SUCCEEDED', 'SUCCEEDED'],
  );

  const listed = await attache(['files', 'list', '--json', '--config', configPath]);
  t.equal(listed.code, 0, listed.stderr);
  const files = JSON.parse(listed.stdout) as {
    name: string;
    deviceId?: string;
    sha256: string;
    size: number;
  }[];
  t.same(
    files.map((f) => [f.deviceId ?? 'gateway', f.name, f.size, f.sha256]),
    [
      ['pump-3', 'druglib-2026.bin', druglib.length, sha256(druglib)],
      ['gateway', 'settings.json', settings.length, sha256(settings)],
    ],
  );
  const text = await attache(['files', 'list', '--config', configPath]);
  t.match(text.stdout, /pump-3\s+druglib-2026\.bin/);

  const usb = join(world.dir, 'usb');
  const exported = await attache(['files', 'export', '--out', usb, '--config', configPath]);
  t.equal(exported.code, 0, exported.stderr);
  t.same(
    await readFile(join(usb, 'pump-3', 'druglib-2026.bin')),
    druglib,
    'the device file, under its device',
  );
  t.same(await readFile(join(usb, 'settings.json')), settings);
  const manifest = JSON.parse(await readFile(join(usb, 'manifest.json'), 'utf8'));
  t.equal(manifest.gatewayId, 'gw-jobs-1');
  t.same(manifest.files.map((f: { path: string; sha256: string }) => [f.path, f.sha256]).sort(), [
    ['pump-3/druglib-2026.bin', sha256(druglib)],
    ['settings.json', sha256(settings)],
  ]);

  // A delivered file changed on the gateway's disk: export refuses it and says so.
  const object = join(world.dataDir, 'files', 'objects', sha256(settings));
  await writeFile(object, '{"rate":"l/h"}\n');
  const usb2 = join(world.dir, 'usb2');
  const refused = await attache(['files', 'export', '--out', usb2, '--config', configPath]);
  t.equal(refused.code, 1, 'export fails');
  t.match(refused.stderr, /refused settings\.json .*no longer matches its SHA-256/);
  t.same((await readdir(usb2)).sort(), ['manifest.json', 'pump-3'], 'the tampered file is not exported');
  const manifest2 = JSON.parse(await readFile(join(usb2, 'manifest.json'), 'utf8'));
  t.equal(manifest2.refused[0]?.name, 'settings.json', 'the manifest names it');
});

t.end();
