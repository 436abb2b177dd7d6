// A technician's `attache status` reads the cache itself when no gateway answers, so it can hold the
// cache for a moment just as the service starts. Neither side may then fail: the gateway waits for
// the cache, and a command that finds the cache held by a gateway still starting asks it again.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import t from 'tap';
import { bin, Stack, type StatusJson } from './helpers/stack.js';

/** Opens the stack's cache in this process, so that another process finds it locked. */
async function holdCache(stack: Stack): Promise<LevelCache> {
  const data = join(stack.dir, 'data');
  const cache = new LevelCache({
    path: join(data, 'cache'),
    keyring: await loadOrCreateKeyring(join(data, 'keys', 'cache.key')),
  });
  await cache.open();
  return cache;
}

t.test('the gateway waits for a cache another process holds, then starts and stores', async (t) => {
  const stack = await Stack.start(t);
  const held = await holdCache(stack);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'the cache is in use by another process: waiting for it');
  await new Promise((r) => setTimeout(r, 1000));
  t.notOk(
    gateway.logs.some((l) => l.msg === 'gateway started'),
    'not started while the cache is held',
  );
  t.equal(gateway.child.exitCode, null, 'and still running');
  await held.close();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  await stack.device.sendReading();
  const status = await stack.statusUntil((s) => s.backlog.records === 1);
  t.equal(status.running, true);
  t.equal(status.adapters[0]?.stored, 1, 'the reading is stored');
});

t.test('status asks again while the cache is held by a gateway that does not answer yet', async (t) => {
  const stack = await Stack.start(t);
  const held = await holdCache(stack);
  const child = spawn(process.execPath, [bin, 'status', '--json', '--config', stack.configPath]);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(() => child.kill());
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(child.exitCode, null, 'status is still waiting, not failing with the cache locked');
  await held.close();
  t.equal(await exited, 0, stderr);
  const status = JSON.parse(stdout) as StatusJson;
  t.equal(status.running, false, 'then it reads the cache itself');
  t.equal(status.backlog.records, 0);
});
