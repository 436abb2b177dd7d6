// Zero-touch provisioning by claim, end to end: boxes that hold only the fleet's claim and config
// template (a real `attache run`, a simulated bedside device on a pty) provision themselves in their
// first window against the Fleet Provisioning emulator on the real mosquitto, and upload as their
// own thing.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { type FleetBox, FleetWorld } from './helpers/fleet-world.js';
import { recordsOf } from './helpers/stack.js';

t.on('complete', () => setImmediate(() => process.exit()));

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** The box's key and issued certificate belong together, and the key is owner-only. */
async function identityOf(box: FleetBox): Promise<{ certificate: X509Certificate; keyMode: number }> {
  const key = createPrivateKey(await readFile(join(box.identityDir, 'device.key')));
  const certificate = new X509Certificate(await readFile(join(box.identityDir, 'device.crt')));
  if (!certificate.checkPrivateKey(key)) throw new Error('the certificate is not for the box key');
  return { certificate, keyMode: (await stat(join(box.identityDir, 'device.key'))).mode & 0o777 };
}

async function sync(box: FleetBox): Promise<{ code: number; result: Record<string, unknown> }> {
  const { code, stdout, stderr } = await box.run('sync', '--json');
  try {
    return { code, result: JSON.parse(stdout) as Record<string, unknown> };
  } catch {
    throw new Error(`attache sync printed no result (${code}): ${stdout}${stderr}`);
  }
}

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

    const { code, result } = await sync(box);
    t.equal(code, 0, JSON.stringify(result));
    t.match(result, { outcome: 'drained', records: 3 });
    const [batch] = await telemetry.waitFor(1, 10_000);
    t.equal(recordsOf([batch as Buffer]).length, 3, 'uploaded on its own thing topic');

    const thing = world.emulator.things.get(box.thingName);
    t.ok(thing, 'the thing is registered');
    t.match(thing?.parameters, { SerialNumber: box.serial, ThingName: box.thingName, Site: 'ward-3' });
    const { certificate, keyMode } = await identityOf(box);
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
    t.match((await sync(box)).result, { outcome: 'drained', records: 1 });
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
    t.match((await sync(box)).result, { outcome: 'drained', records: 1 }, box.name);
  }
  t.same([...world.emulator.things.keys()].sort(), boxes.map((b) => b.thingName).sort());
  const [a, b] = await Promise.all(boxes.map(identityOf));
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
  const { code, result } = await sync(box);
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
  t.end();
});

/** Kills `attache run` and its window process at once, as a power cut would. */
async function powerCut(box: FleetBox): Promise<void> {
  const gateway = box.gateways.at(-1);
  const pid = gateway?.child.pid;
  if (!gateway || pid === undefined) throw new Error('no gateway running');
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  for (const child of children.split(/\s+/).filter(Boolean)) process.kill(Number(child), 'SIGKILL');
  process.kill(pid, 'SIGKILL');
  await gateway.exited;
}

const cuts = [
  { after: 'the key was made', hold: 'create-from-csr', cloudGotIt: true },
  { after: 'the certificate was issued', hold: 'register', cloudGotIt: false },
  { after: 'the registration', hold: 'register', cloudGotIt: true },
] as const;

for (const cut of cuts) {
  t.test(`a box cut off after ${cut.after} ends provisioned exactly once`, async (t) => {
    const world = await FleetWorld.start(t);
    const box = await world.box('00000000000000c1');
    const gateway = box.start();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    await box.device.sendReading();
    const held = world.emulator.hold(cut.hold);
    const interrupted = box.run('sync', '--json');
    await held.arrived;
    const key = await readFile(join(box.identityDir, 'device.key'), 'utf8');
    await powerCut(box);
    await held.release(cut.cloudGotIt);
    await interrupted;
    t.match(await box.state(), { state: 'provisioning' }, 'provisioning, not finished');
    t.match((await box.run('status')).stdout, /fleet provisioning: PROVISIONING since/);

    const again = box.start();
    await again.waitForLog((l) => l.msg === 'gateway started');
    const { result } = await sync(box);
    t.match(result, { outcome: 'drained', records: 1 }, 'the reading cached before the cut is uploaded');
    t.same([...world.emulator.things.keys()], [box.thingName], 'one thing');
    const thing = world.emulator.things.get(box.thingName);
    t.equal(thing?.certificateIds.size, 1, 'with one certificate');
    t.equal(await readFile(join(box.identityDir, 'device.key'), 'utf8'), key, 'the key made first is kept');
    t.same((await readdir(box.identityDir)).sort(), ['device.crt', 'device.key'], 'no other key');
    const { certificate } = await identityOf(box);
    const active = world.emulator.certificates.get([...(thing?.certificateIds ?? [])][0] as string);
    t.equal(
      new X509Certificate(active?.certificatePem ?? '').fingerprint256,
      certificate.fingerprint256,
      'the thing has the certificate the box uses',
    );
    t.match(await box.state(), { state: 'provisioned', thingName: box.thingName });
    t.end();
  });
}
t.end();
