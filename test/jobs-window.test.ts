// AWS IoT Jobs inside a real gateway's connectivity window: `attache sync` takes the pending jobs
// on the window's own connection, delivers a signed file, and rejects a mis-signed one.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { sha256, signedJob, signingKey } from './helpers/jobs-fixtures.js';
import { serviceWorld } from './helpers/jobs-service.js';
import { thingName } from './helpers/stack.js';

// The emulator's AWS CRT client can hold the event loop: exit once tap is done.
t.on('complete', () => setImmediate(() => process.exit()));

t.test('attache sync delivers a signed file pushed by a job and rejects a mis-signed one', async (t) => {
  const { stack, emulator, server, artifact, addJob } = await serviceWorld(t);
  const library = randomBytes(200_000);
  const forged = randomBytes(1000);
  await addJob('druglib-7', {
    schemaVersion: 2,
    operation: 'file-delivery',
    name: 'druglib-7.bin',
    artifact: artifact(library, { url: server.serve('druglib-7.bin', library) }),
  });
  const forgedJob = {
    schemaVersion: 2,
    operation: 'file-delivery',
    name: 'forged.bin',
    artifact: artifact(forged, { url: server.serve('forged.bin', forged) }),
  };
  await emulator.addJob('forged-1', signedJob(forgedJob, signingKey().privateKey, thingName));

  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const sync = await stack.run('sync', '--json');
  t.equal(sync.code, 0, sync.stderr);
  t.equal(emulator.executions.get('druglib-7')?.status, 'SUCCEEDED', 'the signed file is delivered');
  t.equal(emulator.executions.get('forged-1')?.status, 'REJECTED', 'the mis-signed one is rejected');
  t.match(emulator.executions.get('forged-1')?.statusDetails.reason, /signature/);

  const list = await stack.run('files', 'list', '--json');
  t.equal(list.code, 0, list.stderr);
  const files = JSON.parse(list.stdout) as { name: string; sha256: string; size: number }[];
  t.same(
    files.map((f) => [f.name, f.sha256, f.size]),
    [['druglib-7.bin', sha256(library), library.length]],
    'attache files list shows the delivered file, and only it',
  );
  t.end();
});
