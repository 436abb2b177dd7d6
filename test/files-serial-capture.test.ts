// Serial log capture in a running gateway: a device on a serial port prints readings and, when asked
// for its error log, the log between a start and an end line. With `capture` the readings still
// arrive as records and the log becomes a file of files up, uploaded byte-identical.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { CredentialsProviderEmulator, S3UploadEmulator } from './helpers/files-up-emulator.js';
import { attache, recordsOf, Stack, thingName } from './helpers/stack.js';

interface FilesStatus {
  files?: { captured: number; uploaded: number; waiting: number };
}

const log = Buffer.from(
  `${[
    '=== ERROR LOG BEGIN ===',
    ...Array.from({ length: 200 }, (_, i) => `${String(i).padStart(4, '0')} E42 occlusion pump 2`),
    '=== ERROR LOG END ===',
  ].join('\r\n')}\r\n`,
);

t.test('a log the device prints goes up as a file while its readings still arrive', async (t) => {
  const stack = await Stack.start(t);
  const provider = await CredentialsProviderEmulator.start(stack.pki);
  const s3 = await S3UploadEmulator.start(stack.pki, provider);
  t.teardown(() => Promise.all([provider.close(), s3.close()]));
  const config = stack.config();
  const [device] = config.devices as Record<string, unknown>[];
  await stack.writeConfig({
    ...config,
    devices: [{ ...device, capture: { start: '^=== ERROR LOG BEGIN', end: '^=== ERROR LOG END' } }],
    files: {
      upload: {
        credentialsEndpoint: provider.endpoint,
        roleAlias: provider.roleAlias,
        bucket: s3.bucket,
        region: s3.region,
        endpoint: s3.endpoint,
        caFile: stack.pki.caFile,
      },
    },
  });
  const validate = await stack.run('config', 'validate');
  t.equal(validate.code, 0, validate.stderr);

  const telemetry = await stack.subscribe('telemetry');
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  for (let i = 0; i < 3; i++) await stack.device.sendReading();
  await stack.device.sendRaw(log);
  for (let i = 0; i < 3; i++) await stack.device.sendReading();

  const captured = await stack.statusUntil(
    (s) => (s as FilesStatus).files?.captured === 1 && (s.adapters[0]?.stored ?? 0) >= 6,
  );
  t.match(captured, { files: { captured: 1, waiting: 1 }, adapters: [{ deviceId: 'spo2-bed7', stored: 6 }] });
  const listed = await stack.run('files', 'list', '--json');
  t.match(JSON.parse(listed.stdout), [
    { direction: 'up', deviceId: 'spo2-bed7', source: /^serial:/, size: log.length },
  ]);

  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, sync.stderr);
  t.match(JSON.parse(sync.stdout), { files: { uploaded: 1, failed: 0, remaining: 0 } });
  const sha = createHash('sha256').update(log).digest('hex');
  const object = [...s3.objects].find(
    ([key]) => key.startsWith(`${thingName}/spo2-bed7/`) && key.endsWith(sha),
  );
  t.ok(object?.[1].body.equals(log), 'the log is byte-identical in the bucket');
  // The window published before it ended; the broker hands the batches on a moment later.
  await telemetry.waitFor(1, 30_000);
  while (recordsOf(telemetry.messages).length < 6) await new Promise((r) => setTimeout(r, 50));
  t.match(recordsOf(telemetry.messages), Array(6).fill({ deviceId: 'spo2-bed7' }), 'every reading went up');
  t.notOk(
    telemetry.messages.some((m) => m.toString().includes('occlusion')),
    'the log is no reading',
  );
  await gateway.stop();
});

t.test(
  'a capture pattern that needs backtracking, or capture without files up, is refused at its field',
  async (t) => {
    const stack = await Stack.start(t);
    const config = stack.config();
    const [device] = config.devices as Record<string, unknown>[];
    const path = join(stack.dir, 'bad.json');
    await writeFile(
      path,
      JSON.stringify({ ...config, devices: [{ ...device, capture: { start: '^(=+) LOG \\1$', end: '[' } }] }),
    );
    const validate = await attache(['config', 'validate', '--offline', '--config', path]);
    t.equal(validate.code, 78);
    t.match(
      validate.stderr,
      /\/devices\/0\/capture: capture stores files in files up: configure `files` too/,
    );
    t.match(validate.stderr, /\/devices\/0\/capture\/start: cannot be matched in linear time/);
    t.match(validate.stderr, /\/devices\/0\/capture\/end: not a valid regular expression/);
  },
);
