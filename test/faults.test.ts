import { execFile } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { attache, recordsOf, Stack } from './helpers/stack.js';

t.test('killing the broker mid-upload loses nothing; the next sync completes', async (t) => {
  // Small messages under AWS IoT Core's 100 publishes/s cap make the upload last long enough to cut it.
  const stack = await Stack.start(t, { uplink: { maxMessageBytes: 1500, maxInFlight: 5 } });
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const total = 1500;
  for (let i = 0; i < total; i++) await stack.device.sendReading();
  await stack.statusUntil((s) => s.backlog.records === total, 60_000);

  const first = await stack.subscribe();
  const syncing = stack.run('sync', '--json');
  await first.waitFor(10, 30_000);
  await stack.broker.kill();
  const broken = await syncing;
  t.equal(broken.code, 1, 'sync reports the failed window');
  const failed = JSON.parse(broken.stdout);
  t.equal(failed.outcome, 'failed');
  t.equal(failed.error.code, 'ATTACHE_UPLINK_PUBLISH');
  t.ok(failed.records < total, 'the window was cut before the end');

  const left = await stack.statusUntil(() => true);
  t.equal(
    left.backlog.records,
    total - failed.records,
    'every record not acknowledged is still in the cache',
  );
  t.equal(left.lastWindow?.outcome, 'failed');

  await stack.broker.restart();
  const second = await stack.subscribe();
  const resumed = await stack.run('sync', '--json');
  t.equal(resumed.code, 0, 'the next window completes');
  const window = JSON.parse(resumed.stdout);
  t.equal(window.outcome, 'drained');
  const seen = new Set(
    [...recordsOf(first.messages), ...recordsOf(await second.waitFor(window.messages, 30_000))].map(
      (r) => r.seq,
    ),
  );
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((seq) => !seen.has(seq));
  t.same(missing, [], 'every seq reached the broker (at least once)');
  t.equal((await stack.statusUntil(() => true)).backlog.records, 0);
});

t.test('an invalid config is refused with the path of every error', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'bad.json');
  await writeFile(
    path,
    JSON.stringify({
      version: 1,
      gateway: { id: 'bad id!' },
      devices: [
        {
          id: 'd1',
          adapter: 'rs232',
          port: { path: '/dev/ttyS0', baudRate: 12345, parity: 'sometimes' },
          format: { kind: 'kv-line', fields: {} },
        },
      ],
      uplink: { endpoint: 'x', certFile: 'c', keyFile: 'k', maxMessageBytes: 1_000_000 },
      colour: 'blue',
    }),
  );
  for (const command of ['run', 'config validate']) {
    const { code, stdout, stderr } = await attache([...command.split(' '), '--config', path]);
    t.equal(code, 78, `${command}: exit code 78 (EX_CONFIG)`);
    t.equal(stdout, '', `${command}: nothing starts`);
    for (const p of [
      '/gateway/id',
      '/devices/0/port/baudRate',
      '/devices/0/port/parity',
      '/devices/0/format/fields',
      '/uplink/maxMessageBytes',
      '/colour',
    ]) {
      t.match(stderr, `  ${p}: `, `${command}: names ${p}`);
    }
  }
  const missing = await attache(['run', '--config', join(dir, 'nope.json')]);
  t.equal(missing.code, 78);
  t.match(missing.stderr, 'file not found');
  await writeFile(join(dir, 'broken.json'), '{ "version": 1,');
  const broken = await attache(['config', 'validate', '--config', join(dir, 'broken.json')]);
  t.equal(broken.code, 78);
  t.match(broken.stderr, 'not valid JSON');
  const unstable = {
    version: 1,
    gateway: { id: 'gw-1', dataDir: join(dir, 'data') },
    devices: [
      {
        id: 'spo2-bed7',
        adapter: 'rs232',
        port: { path: '/dev/ttyUSB0' },
        format: { kind: 'kv-line', fields: { SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' } } },
      },
    ],
  };
  await writeFile(join(dir, 'unstable.json'), JSON.stringify(unstable));
  const advised = await attache(['config', 'validate', '--config', join(dir, 'unstable.json')]);
  t.equal(advised.code, 0, 'a port named /dev/ttyUSB0 is valid');
  t.match(
    advised.stderr,
    'warning: /devices/0/port/path: /dev/ttyUSB0 can name another device after a replug or a reboot',
    'but the technician is told to use its by-id name',
  );
});

t.test('a window process that dies mid-upload stops neither acquisition nor the next window', async (t) => {
  const stack = await Stack.start(t, { uplink: { maxMessageBytes: 1500, maxInFlight: 5 } });
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const total = 800;
  for (let i = 0; i < total; i++) await stack.device.sendReading();
  await stack.statusUntil((s) => s.backlog.records === total, 60_000);

  const first = await stack.subscribe();
  const syncing = stack.run('sync', '--json');
  await first.waitFor(5, 30_000);
  const children = await new Promise<string>((resolve) =>
    execFile('pgrep', ['-P', String(gateway.child.pid)], (_err, stdout) => resolve(stdout)),
  );
  const windowPid = Number(children.trim().split('\n')[0]);
  t.ok(windowPid > 0, 'the window runs in a child process of the gateway');
  process.kill(windowPid, 'SIGKILL');

  const broken = await syncing;
  t.equal(broken.code, 1);
  const failed = JSON.parse(broken.stdout);
  t.equal(failed.outcome, 'failed');
  t.equal(failed.error.code, 'ATTACHE_INTERNAL');
  t.equal(gateway.child.exitCode, null, 'the gateway keeps running');

  await stack.device.sendReading();
  const after = await stack.statusUntil((s) => s.adapters[0]?.stored === total + 1);
  t.equal(after.adapters[0]?.state, 'connected', 'the device is still read');
  t.equal(
    after.backlog.records,
    total + 1 - failed.records,
    'only what the broker acknowledged left the cache',
  );

  const second = await stack.subscribe();
  const resumed = await stack.run('sync', '--json');
  t.equal(resumed.code, 0, 'the next window completes');
  const window = JSON.parse(resumed.stdout);
  const seen = new Set(
    [...recordsOf(first.messages), ...recordsOf(await second.waitFor(window.messages, 30_000))].map(
      (r) => r.seq,
    ),
  );
  const missing = Array.from({ length: total + 1 }, (_, i) => i + 1).filter((seq) => !seen.has(seq));
  t.same(missing, [], 'every seq reached the broker (at least once)');
});

t.test('a cache whose key file was lost is not opened with a new key', async (t) => {
  const stack = await Stack.start(t);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  for (let i = 0; i < 3; i++) await stack.device.sendReading();
  await stack.statusUntil((s) => s.backlog.records === 3);
  await gateway.stop();
  const keyFile = join(stack.dir, 'data', 'keys', 'cache.key');
  await rename(keyFile, `${keyFile}.bak`);

  const refused = await stack.run('run');
  t.equal(refused.code, 1, 'the gateway does not start');
  t.match(refused.stdout, 'ATTACHE_CACHE_KEY', 'and says why');
  t.match(refused.stdout, 'key file is missing');
  await t.rejects(readFile(keyFile), { code: 'ENOENT' }, 'no new key was made');

  await rename(`${keyFile}.bak`, keyFile);
  const status = await stack.statusUntil(() => true);
  t.equal(status.backlog.records, 3, 'with the key restored, the backlog is all there');
  t.equal(status.cache.quarantined, 0, 'and none of it fails authentication');
});

t.test('a full cache refuses new readings and says so; nothing stored is lost', async (t) => {
  const stack = await Stack.start(t);
  const config = stack.config() as { cache: Record<string, unknown> };
  config.cache = { ...config.cache, maxRecords: 5, whenFull: 'refuse' };
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  for (let i = 0; i < 8; i++) await stack.device.sendReading();
  const full = await stack.statusUntil((s) => (s.adapters[0]?.frames ?? 0) === 8);
  t.equal(full.backlog.records, 5, 'the cache holds its bound');
  t.equal(full.adapters[0]?.refused, 3, 'the rest are counted as refused');
  t.equal(full.cache.full, true, 'status says the cache is full');
  t.equal(full.cache.dropped, 0, 'nothing stored was dropped');
  const status = await stack.run('status');
  t.match(status.stdout, 'cache: FULL');

  const dashboard = await stack.subscribe();
  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0);
  const records = recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000));
  t.same(
    records.map((r) => r.seq),
    [1, 2, 3, 4, 5],
    'the stored five are uploaded; refused readings used no seq',
  );
  await stack.device.sendReading();
  const after = await stack.statusUntil((s) => s.adapters[0]?.stored === 6);
  t.equal(after.cache.full, false, 'after the window there is room again');
});
