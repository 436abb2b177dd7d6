import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkBatch } from '@attache/core';
import t from 'tap';
import { recordsOf, Stack, thingName } from './helpers/stack.js';

/** What the dashboard should see for a Nonin line the simulator sent. */
function expected(line: string): { spo2: number | null; hr: number | null } {
  const value = (key: string) => {
    const v = new RegExp(`${key}=(\\S+)`).exec(line)?.[1] ?? '';
    return /^\d+$/.test(v) ? Number(v) : null;
  };
  return { spo2: value('SPO2'), hr: value('HR') };
}

t.test(
  'N lines sent on the serial cable arrive on the broker as N records, in order, each once',
  async (t) => {
    const stack = await Stack.start(t);
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const dashboard = await stack.subscribe();

    const sent: string[] = [];
    for (let i = 0; i < 40; i++) sent.push(await stack.device.sendReading());
    await stack.statusUntil((s) => s.backlog.records === sent.length);

    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0, 'sync exits 0 once the backlog is drained');
    const window = JSON.parse(sync.stdout);
    t.equal(window.outcome, 'drained');
    t.equal(window.records, sent.length);

    const messages = await dashboard.waitFor(window.messages, 30_000);
    t.same(
      messages.map((m) => checkBatch(JSON.parse(m.toString('utf8')))),
      messages.map(() => []),
      'each message matches batch.schema.json (each message)',
    );
    const records = recordsOf(messages);
    t.same(
      records.map((r) => r.seq),
      sent.map((_, i) => i + 1),
      'seqs 1..N, in order, none twice',
    );
    records.forEach((r, i) => {
      const want = expected(sent[i] ?? '');
      const obs = r.observations as { code: string; value: unknown; unit: string; status: string }[];
      const spo2 = obs.find((o) => o.code === 'MDC_PULS_OXIM_SAT_O2');
      const hr = obs.find((o) => o.code === 'MDC_PULS_OXIM_PULS_RATE');
      t.same(
        [spo2?.value ?? null, spo2?.unit, hr?.value ?? null, hr?.unit],
        [want.spo2, '%', want.hr, '/min'],
        `record ${i + 1}: ${sent[i]}`,
      );
      t.equal(spo2?.status, want.spo2 === null ? 'unavailable' : 'valid');
      t.equal(r.gatewayId, thingName);
      t.equal(r.deviceId, 'spo2-bed7');
    });

    const logText = JSON.stringify(gateway.logs);
    for (const secret of [stack.pki.clientKeyFile, stack.pki.clientCertFile, stack.pki.caFile]) {
      t.notMatch(logText, secret, 'no certificate or key path in the log');
    }
    t.notMatch(logText, /PRIVATE KEY/, 'no key material in the log');
    t.match(logText, /"msg":"window closed"/, 'the window is logged');

    const after = await stack.statusUntil(() => true);
    t.equal(after.backlog.records, 0, 'the backlog is empty after the window');
    t.equal(after.lastWindow?.outcome, 'drained', 'status shows the last window');
    t.equal(after.adapters[0]?.stored, sent.length);
  },
);

t.test('records stored before a gateway restart are uploaded after it, and seqs continue', async (t) => {
  const stack = await Stack.start(t);
  const first = stack.startGateway();
  await first.waitForLog((l) => l.msg === 'gateway started');
  for (let i = 0; i < 15; i++) await stack.device.sendReading();
  await stack.statusUntil((s) => s.backlog.records === 15);
  t.equal(await first.stop(), 0, 'SIGTERM stops the gateway cleanly');

  const cacheDir = join(stack.dir, 'data', 'cache');
  for (const file of await readdir(cacheDir)) {
    const bytes = await readFile(join(cacheDir, file));
    for (const clear of ['spo2-bed7', 'MDC_PULS_OXIM', thingName, 'capturedAt']) {
      t.notOk(bytes.includes(clear), `${file} holds no readable "${clear}": the cache is encrypted at rest`);
    }
  }

  const offline = await stack.statusUntil(() => true);
  t.equal(offline.running, false);
  t.equal(offline.backlog.records, 15, 'the cache still holds every record while the gateway is stopped');

  const second = stack.startGateway();
  await second.waitForLog((l) => l.msg === 'gateway started');
  for (let i = 0; i < 5; i++) await stack.device.sendReading();
  await stack.statusUntil((s) => s.backlog.records === 20);

  const dashboard = await stack.subscribe();
  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0);
  const records = recordsOf(await dashboard.waitFor(JSON.parse(sync.stdout).messages, 30_000));
  t.same(
    records.map((r) => r.seq),
    Array.from({ length: 20 }, (_, i) => i + 1),
    'all 20 records, seqs continuing across the restart',
  );
});

t.test(
  'a malformed line is counted and logged, never crashes the gateway, never reaches the cloud',
  async (t) => {
    const stack = await Stack.start(t);
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const dashboard = await stack.subscribe();

    await stack.device.sendReading();
    await stack.device.sendRaw('PATIENT DOE^JOHN \x01\x02 garbage\r\n');
    await stack.device.sendRaw(Buffer.from([0xff, 0xfe, 0x00, 0x13, 0x0d, 0x0a]));
    await stack.device.sendReading();

    const status = await stack.statusUntil((s) => (s.adapters[0]?.frames ?? 0) >= 4);
    t.equal(status.adapters[0]?.malformed, 2, 'both bad lines are counted');
    t.equal(status.adapters[0]?.stored, 2, 'both good lines are stored');
    t.equal(status.backlog.records, 2);
    const warning = await gateway.waitForLog((l) => l.level === 40 && l.deviceId === 'spo2-bed7');
    t.ok(warning, 'a warning names the device');
    t.notMatch(
      JSON.stringify(gateway.logs),
      /DOE|JOHN|garbage/,
      'the log never repeats what the device sent',
    );

    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0);
    const records = recordsOf(await dashboard.waitFor(1, 30_000));
    t.equal(records.length, 2, 'only the good lines reach the broker');
    t.notMatch(dashboard.messages.map((m) => m.toString()).join(''), /DOE|JOHN|garbage/);
    t.equal(gateway.child.exitCode, null, 'the gateway is still running');
  },
);
