// Zero-touch provisioning by claim, end to end: boxes that hold only the fleet's claim and config
// template (a real `attache run`, a simulated bedside device on a pty) provision themselves in their
// first window against the Fleet Provisioning emulator on the real mosquitto, and upload as their
// own thing.
import { X509Certificate } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { FleetWorld } from './helpers/fleet-world.js';
import { recordsOf } from './helpers/stack.js';

t.on('complete', () => setImmediate(() => process.exit()));

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

t.test(
  'a box with only the claim provisions itself in its first window and uploads as its thing',
  async (t) => {
    const world = await FleetWorld.start(t);
    const box = await world.box('10000000a1b2c3d4');
    const gateway = box.start();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    for (let i = 0; i < 3; i++) await box.device.sendReading();
    await box.backlogUntil(3);
    const before = await box.run('status');
    t.match(before.stdout, /fleet provisioning: NOT PROVISIONED yet: the next window provisions/);
    t.match(before.stdout, /backlog: 3 records/, 'readings are cached before provisioning');
    const telemetry = await world.subscribe(box.thingName);

    const { code, result } = await box.sync();
    t.equal(code, 0, JSON.stringify(result));
    t.match(result, { outcome: 'drained', records: 3 });
    const [batch] = await telemetry.waitFor(1, 30_000);
    t.equal(recordsOf([batch as Buffer]).length, 3, 'uploaded on its own thing topic');

    const thing = world.emulator.things.get(box.thingName);
    t.ok(thing, 'the thing is registered');
    t.match(thing?.parameters, { SerialNumber: box.serial, ThingName: box.thingName, Site: 'ward-3' });
    const { certificate, keyMode } = await box.identity();
    t.equal(keyMode, 0o600, 'the private key is owner-only');
    t.match(certificate.subject, `CN=${box.thingName}`);
    const certificateId = [...(thing?.certificateIds ?? [])];
    t.equal(certificateId.length, 1);
    t.equal(
      new X509Certificate(world.emulator.certificates.get(certificateId[0] as string)?.certificatePem ?? '')
        .fingerprint256,
      certificate.fingerprint256,
      'the certificate stored is the one the thing has',
    );
    t.notOk(await exists(join(box.dir, 'claim.crt')), 'the claim certificate is deleted');
    t.notOk(await exists(join(box.dir, 'claim.key')), 'the claim key is deleted');
    t.match(await box.state(), { state: 'provisioned', thingName: box.thingName, reason: null });
    const after = await box.run('status', '--json');
    t.match(JSON.parse(after.stdout).fleetProvisioning, { state: 'provisioned', thingName: box.thingName });
    t.match(
      (await box.run('status')).stdout,
      new RegExp(`fleet provisioning: provisioned as ${box.thingName}`),
    );

    // The next window is an ordinary one: no provisioning request, the claim is not needed.
    const requests = world.emulator.requests.length;
    await box.device.sendReading();
    t.match((await box.sync()).result, { outcome: 'drained', records: 1 });
    t.equal(world.emulator.requests.length, requests, 'no second provisioning');
    t.end();
  },
);

t.test('two boxes with the same claim become two things', async (t) => {
  const world = await FleetWorld.start(t);
  const boxes = [await world.box('0000000000000001'), await world.box('0000000000000002')];
  // The emulator's answers reach every subscriber on mosquitto (AWS answers only the asker): one at a time.
  for (const box of boxes) {
    const gateway = box.start();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    await box.device.sendReading();
    t.match((await box.sync()).result, { outcome: 'drained', records: 1 }, box.name);
  }
  t.same([...world.emulator.things.keys()].sort(), boxes.map((b) => b.thingName).sort());
  const [a, b] = await Promise.all(boxes.map((b) => b.identity()));
  t.not(a?.certificate.fingerprint256, b?.certificate.fingerprint256, 'each box has its own certificate');
  t.end();
});

t.test('a refused registration leaves a clear state, keeps the readings, and retries', async (t) => {
  const world = await FleetWorld.start(t, { refuse: ['0000000000000666'] });
  const box = await world.box('0000000000000666');
  const gateway = box.start();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  await box.device.sendReading();
  await box.backlogUntil(1);
  const { code, result } = await box.sync();
  t.not(code, 0);
  t.match(result, {
    outcome: 'failed',
    records: 0,
    error: { code: 'ATTACHE_PROVISIONING', message: /AccessDenied \(403\).*pre-provisioning hook/ },
  });
  t.match(await box.state(), { state: 'refused', reason: /RegisterThing refused: AccessDenied/ });
  const status = await box.run('status');
  t.match(status.stdout, /fleet provisioning: REFUSED at \S+: RegisterThing refused: AccessDenied \(403\)/);
  t.match(status.stdout, /backlog: 1 records/, 'the reading waits in the cache');
  t.equal(world.emulator.things.size, 0);
  t.notOk(await exists(join(box.identityDir, 'device.crt')), 'no certificate stored');
  t.ok(await exists(join(box.dir, 'claim.crt')), 'the claim is kept for the next try');

  const again = await box.sync();
  t.match(again.result, { outcome: 'failed', error: { code: 'ATTACHE_PROVISIONING' } }, 'refused again');
  t.equal(world.emulator.certificates.size, 1, 'the retry asks with the same certificate, not a new one');
  t.end();
});

t.end();
