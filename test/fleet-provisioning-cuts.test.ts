// Zero-touch provisioning by claim, end to end, cut off: a box (a real `attache run` holding only the
// fleet's claim) loses power while it provisions, after each step, and ends provisioned exactly
// once in its next window: one thing, one certificate, the key it made first.
import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { type FleetBox, FleetWorld } from './helpers/fleet-world.js';

t.on('complete', () => setImmediate(() => process.exit()));

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
    const { result } = await box.sync();
    t.match(result, { outcome: 'drained', records: 1 }, 'the reading cached before the cut is uploaded');
    t.same([...world.emulator.things.keys()], [box.thingName], 'one thing');
    const thing = world.emulator.things.get(box.thingName);
    t.equal(thing?.certificateIds.size, 1, 'with one certificate');
    t.equal(await readFile(join(box.identityDir, 'device.key'), 'utf8'), key, 'the key made first is kept');
    t.same((await readdir(box.identityDir)).sort(), ['device.crt', 'device.key'], 'no other key');
    const { certificate } = await box.identity();
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
