import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ShadowEmulator } from './helpers/shadow-emulator.js';
import { Stack, thingName } from './helpers/stack.js';
import { schemaErrors } from './helpers/uplink-schemas.js';

// The emulator's MQTT client (aws-crt) can hold the event loop after close: end once tap is done.
t.teardown(() => {});
t.on('complete', () => setImmediate(() => process.exit()));

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
/** The parts of the shadow's reported state this test reads. */
interface Reported {
  settings: { applied: unknown; refused: { path: string; message: string }[] };
  window: unknown;
  version: string;
  adapters: unknown;
  windowPolicies: string[];
}

const parse = (m: Buffer) => JSON.parse(m.toString('utf8')) as Record<string, unknown>;

t.test('shadow: desired settings are validated, applied or refused, persisted and reported', async (t) => {
  const stack = await Stack.start(t, { uplink: { shadowName: 'attache' } });
  const shadow = await ShadowEmulator.start(stack.broker, stack.pki);
  t.teardown(() => shadow.stop());
  await shadow.setDesired(thingName, 'attache', {
    window: { schedules: ['03:00-03:30'], everySeconds: -5 },
    log: { level: 'debug' },
    cache: { maxRecords: 1 },
  });
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const state = await stack.subscribe('state');

  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, `sync exits 0: ${sync.stdout}${sync.stderr}`);

  const reported = shadow.document(thingName, 'attache')?.reported as unknown as Reported;
  t.same(
    reported.settings.applied,
    { window: { schedules: ['03:00-03:30'] }, log: { level: 'debug' } },
    'applied',
  );
  t.same(
    reported.settings.refused.map((r) => r.path).sort(),
    ['/cache/maxRecords', '/window/everySeconds'],
    'refused: a value the config schema rejects, and a setting that is not remotely settable',
  );
  t.match(reported.settings.refused.find((r) => r.path === '/window/everySeconds')?.message, /must be >= 0/);
  t.same(reported.window, { schedules: ['03:00-03:30'] }, 'applied settings mirrored so the delta clears');
  t.equal(reported.version, '0.1.0');
  t.match(reported.adapters, [{ deviceId: 'spo2-bed7', adapter: 'rs232' }]);
  t.ok(reported.windowPolicies.includes('schedule 03:00-03:30'), 'the new schedule is in force');
  const persisted = JSON.parse(await readFile(join(stack.dir, 'data', 'remote-settings.json'), 'utf8'));
  t.same(persisted.applied, reported.settings.applied, 'persisted in the data dir');
  const status = await stack.statusUntil(() => true);
  t.match(JSON.stringify(status), 'schedule 03:00-03:30', 'attache status shows the schedule');

  const [message] = await state.waitFor(1, 30_000);
  const body = parse(message as Buffer);
  t.same(schemaErrors('state', body), [], 'the state message matches state.schema.json');
  t.equal(body.gatewayId, thingName);

  // A change while the gateway is up arrives as a delta during the next window.
  await stack.run('sync', '--json');
  t.same(shadow.document(thingName, 'attache')?.reported.log, { level: 'debug' });
});

t.test(
  'hooks run around every window (post-hook also after a failure); clock correction published',
  async (t) => {
    const stack = await Stack.start(t);
    const marks = join(stack.dir, 'marks');
    const syncFile = join(stack.dir, 'timesync-synchronized');
    const config = stack.config({
      uplink: {
        shadowName: '',
        window: {
          preHook: {
            command: ['/bin/sh', '-c', `mkdir -p ${marks} && touch ${marks}/pre ${syncFile}`],
            timeoutSeconds: 5,
          },
          postHook: {
            command: ['/bin/sh', '-c', `mkdir -p ${marks} && touch ${marks}/post`],
            timeoutSeconds: 5,
          },
        },
      },
    }) as { gateway: Record<string, unknown> };
    config.gateway.clockSyncFile = syncFile;
    await stack.writeConfig(config);
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    const events = await stack.subscribe('events');
    await stack.device.sendReading();
    await stack.statusUntil((s) => s.backlog.records === 1);

    const ok = await stack.run('sync', '--json');
    const window = JSON.parse(ok.stdout) as { outcome: string; events: number };
    t.equal(window.outcome, 'drained');
    t.ok(await exists(join(marks, 'pre')), 'pre-hook ran');
    t.ok(await exists(join(marks, 'post')), 'post-hook ran');
    // Every event the broker acknowledged in the window (the device's connection, the correction).
    const received = (await events.waitFor(window.events, 30_000)).map(parse);
    t.same(
      received.map((e) => schemaErrors('event', e)),
      received.map(() => []),
      'each event matches event.schema.json',
    );
    const correction = received.find((e) => e.type === 'clock.corrected') as {
      detail: Record<string, unknown>;
    };
    t.ok(correction, 'a clock.corrected event once the pre-hook synchronized the clock');
    const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    t.match(correction?.detail, { bootId, source: 'timesyncd' });

    await rm(join(marks, 'post'));
    await stack.broker.stop();
    const failed = await stack.run('sync', '--json');
    const result = JSON.parse(failed.stdout);
    t.equal(result.outcome, 'failed');
    t.equal(result.error.code, 'ATTACHE_UPLINK_CONNECT');
    t.match(result.error.message, /unreachable \(ECONNREFUSED\)/, 'the reason is clear');
    t.ok(await exists(join(marks, 'post')), 'post-hook ran after the failed window');
  },
);
