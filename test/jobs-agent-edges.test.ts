// The jobs agent when the cloud side misbehaves or refuses: no answer, an operation this gateway
// does not accept, a job canceled while it is being applied.
import { FileDeliveryHandler } from '@attache/jobs';
import t from 'tap';
import { JobsWorld } from './helpers/jobs-fixtures.js';

// The AWS CRT's MQTT clients can hold the event loop until garbage collection: the root test
// ends after its subtests (t.end() below), not when the loop drains, and the process exits then.
t.on('complete', () => setImmediate(() => process.exit()));

const delivery = (name: string, artifact: unknown) => ({
  schemaVersion: 2,
  operation: 'file-delivery',
  name,
  artifact,
});

t.test('an operation the gateway does not accept is REJECTED', async (t) => {
  const world = await JobsWorld.start(t);
  const content = Buffer.from('x');
  await world.addJob('sw', {
    schemaVersion: 2,
    operation: 'software-update',
    version: '9.0.0',
    artifact: world.artifact(content, { inline: true }),
  });
  const result = await world.window({ 'file-delivery': new FileDeliveryHandler(world.files) });
  t.equal(result.jobs[0]?.status, 'REJECTED');
  t.match(world.emulator.executions.get('sw')?.statusDetails.reason, /software-update is not enabled/);
});

t.test('a job canceled in the cloud while applying ends the window; it is not applied again', async (t) => {
  const world = await JobsWorld.start(t);
  const files = new FileDeliveryHandler(world.files);
  let applied = 0;
  const handlers = {
    'file-delivery': {
      apply: (context: Parameters<FileDeliveryHandler['apply']>[0]) => {
        applied++;
        world.emulator.cancel('doomed');
        return files.apply(context);
      },
    },
  };
  await world.addJob('doomed', delivery('a.txt', world.artifact(Buffer.from('a'), { inline: true })));
  const result = await world.window(handlers);
  t.ok(result.interrupted, 'the refused terminal update ends the window');
  t.equal(world.emulator.executions.get('doomed')?.status, 'CANCELED');
  const next = await world.window(handlers);
  t.same(next.jobs, [], 'nothing pending');
  t.equal(applied, 1);
});

t.test('a jobs service that does not answer ends the window, nothing lost', async (t) => {
  const world = await JobsWorld.start(t);
  await world.emulator.stop();
  const result = await world.window({}, 500);
  t.same(result, { jobs: [], interrupted: true });
});

t.end();
