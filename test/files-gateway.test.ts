// Files up in a running gateway: a file the device exports to its folder is captured, sealed, and
// uploaded to S3 (through the credentials provider) by the next window, after the telemetry;
// `attache status` and `attache files list` tell what happened.
import { createHash } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { CredentialsProviderEmulator, S3UploadEmulator } from './helpers/files-up-emulator.js';
import { Stack, thingName } from './helpers/stack.js';

interface FilesStatus {
  files?: { captured: number; uploaded: number; refused: number; dropped: number; waiting: number };
}

t.test('a file the device exports goes up in the next window and leaves the box', async (t) => {
  const stack = await Stack.start(t);
  const provider = await CredentialsProviderEmulator.start(stack.pki);
  const s3 = await S3UploadEmulator.start(stack.pki, provider);
  t.teardown(() => Promise.all([provider.close(), s3.close()]));
  const share = join(stack.dir, 'share');
  await mkdir(share);
  const config = stack.config();
  await stack.writeConfig({
    ...config,
    files: {
      sources: [{ type: 'folder', path: share, deviceId: 'spo2-bed7', scanSeconds: 1, settleSeconds: 0 }],
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
  const report = Buffer.from('SERVICE REPORT\nsensor drift 2%\n'.repeat(50));
  await writeFile(join(share, 'service.txt'), report);
  const old = new Date(Date.now() - 60_000);
  await utimes(join(share, 'service.txt'), old, old);

  const events = await stack.subscribe('events');
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const captured = await stack.statusUntil((s) => (s as FilesStatus).files?.captured === 1);
  t.match(captured, { files: { captured: 1, uploaded: 0, waiting: 1 } }, 'status tells it was captured');
  const listed = await stack.run('files', 'list', '--json');
  t.match(JSON.parse(listed.stdout), [
    { direction: 'up', deviceId: 'spo2-bed7', source: 'folder', name: 'service.txt' },
  ]);

  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, sync.stderr);
  t.match(
    JSON.parse(sync.stdout),
    { files: { uploaded: 1, failed: 0, remaining: 0 } },
    'the window reports it',
  );
  const sha = createHash('sha256').update(report).digest('hex');
  const object = [...s3.objects].find(
    ([key]) => key.startsWith(`${thingName}/spo2-bed7/`) && key.endsWith(sha),
  );
  t.ok(object?.[1].body.equals(report), 'byte-identical in the bucket');
  t.match(await stack.statusUntil((s) => (s as FilesStatus).files?.uploaded === 1), {
    files: { captured: 1, uploaded: 1, waiting: 0 },
  });
  // Events go up with the window after they happened: the upload's with the next one.
  const next = await stack.run('sync', '--json');
  t.equal(next.code, 0);
  const acknowledged = JSON.parse(sync.stdout).events + JSON.parse(next.stdout).events;
  const sent = (await events.waitFor(acknowledged, 30_000)).map(
    (m) => JSON.parse(m.toString()) as { type: string; detail: Record<string, unknown> },
  );
  const fileEvents = sent.filter((e) => e.type.startsWith('file.'));
  t.match(fileEvents, [
    {
      type: 'file.captured',
      detail: { deviceId: 'spo2-bed7', sha256: sha, size: report.length, origin: 'folder' },
    },
    { type: 'file.uploaded', detail: { deviceId: 'spo2-bed7', sha256: sha, key: object?.[0] } },
  ]);
  t.notOk(JSON.stringify(fileEvents).includes('service.txt'), 'events never carry the file name');
  const text = await stack.run('status');
  t.match(text.stdout, /files up: 0 waiting .*captured 1, uploaded 1, refused 0, dropped 0/);
  await gateway.stop();
});
