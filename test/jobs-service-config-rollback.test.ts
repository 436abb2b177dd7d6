// A config update that breaks an adapter, applied by the running service: the real `attache run`
// reloads onto it, finds the changed adapter not connected within the settle time, restores the
// previous config, reloads again and reports the job FAILED with the reason.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { type Device, replace, serviceWorld } from './helpers/jobs-service.js';

// The emulator's AWS CRT client can hold the event loop: exit once tap is done.
t.on('complete', () => setImmediate(() => process.exit()));

t.test('a config that breaks an adapter is rolled back and the job FAILED with the reason', async (t) => {
  const { stack, emulator, addJob, config, artifact } = await serviceWorld(t);
  const original = await readFile(stack.configPath, 'utf8');
  const devices = config.devices as Device[];
  const broken = {
    ...config,
    devices: devices.map((d) => ({ ...d, port: { ...d.port, path: `${stack.dir}/no-such-tty` } })),
  };
  await addJob('breaks', replace(artifact(Buffer.from(JSON.stringify(broken)), { inline: true })));
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');

  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, sync.stderr);
  const execution = emulator.executions.get('breaks');
  t.equal(execution?.status, 'FAILED');
  t.match(
    execution?.statusDetails.reason,
    /^unhealthy on the new config: adapter spo2-bed7 not connected within 10 s: .+; rolled back$/,
  );
  t.equal(await readFile(stack.configPath, 'utf8'), original, 'the previous config is back');
  t.equal(gateway.child.exitCode, null, 'the gateway kept running');
  t.equal(gateway.logs.filter((l) => l.msg === 'config reloaded').length, 2, 'reloaded onto it and back');
  await stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
  await stack.device.sendReading();
  await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 1);
  t.pass('the adapter runs again on the previous config and stores readings');
});

t.end();
