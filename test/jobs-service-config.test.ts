// Config updates applied by the running service: a real `attache run` takes the job in its
// connectivity windows (`attache sync`), writes the new config, reloads its adapters in-process and
// checks their health.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { type Device, replace, serviceWorld } from './helpers/jobs-service.js';

// The emulator's AWS CRT client can hold the event loop: exit once tap is done.
t.on('complete', () => setImmediate(() => process.exit()));

t.test('a config update downloaded across two windows is applied by the running gateway', async (t) => {
  const { stack, emulator, addJob, server, config, artifact } = await serviceWorld(t);
  const original = await readFile(stack.configPath, 'utf8');
  const devices = config.devices as Device[];
  const next = {
    ...config,
    log: { level: 'debug' },
    devices: devices.map((d) => ({ ...d, port: { ...d.port, reconnectMs: 300 } })),
  };
  const content = Buffer.from(JSON.stringify(next));
  await addJob('config-1', replace(artifact(content, { url: server.serve('config.json', content) })));
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  await stack.device.sendReading();
  await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 1);

  server.cutNextAt(100);
  await stack.run('sync', '--json');
  const execution = emulator.executions.get('config-1');
  t.equal(execution?.status, 'IN_PROGRESS', 'the first window ends mid-download');
  t.equal(await readFile(stack.configPath, 'utf8'), original, 'the config is unchanged meanwhile');

  const syncAt = Date.now();
  const second = await stack.run('sync', '--json');
  t.equal(second.code, 0, second.stderr);
  t.equal(execution?.status, 'SUCCEEDED', 'the job SUCCEEDED');
  const written = JSON.parse(await readFile(stack.configPath, 'utf8'));
  t.equal(written.log.level, 'debug', 'the new config is in place');
  t.equal(written.devices[0].port.reconnectMs, 300);
  t.equal(await readFile(`${stack.configPath}.prev`, 'utf8'), original, 'the previous one is kept as .prev');
  t.equal(gateway.child.exitCode, null, 'the same process runs on, reloaded in-process');
  t.ok(gateway.logs.some((l) => l.msg === 'config reloaded'));
  const after = await stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
  t.equal(after.adapters[0]?.stored, 0, 'a new adapter runs (its counters start again)');
  await stack.device.sendReading();
  await stack.statusUntil((s) => (s.adapters[0]?.stored ?? 0) >= 1);
  t.pass('the new adapter stores readings');

  const succeeded = execution?.updates.find((u) => u.status === 'SUCCEEDED')?.at ?? 0;
  t.comment(
    `config update, measured: start-next hand-out to SUCCEEDED accepted ${succeeded - (execution?.handedOutAt ?? 0)} ms; ` +
      `attache sync started to SUCCEEDED ${succeeded - syncAt} ms (includes the window's connect)`,
  );
});

t.end();
