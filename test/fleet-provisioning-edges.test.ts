// Provisioning by claim (provisionByClaim, the gateway's own code) against the Fleet Provisioning
// emulator on mosquitto, for what the end-to-end tests do not reach: a box without a serial number
// or claim, a template that names another thing, an unknown template, a cloud that does not answer,
// and a kept ownership token the cloud no longer takes.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nullLogger, type UplinkConfig, validateConfig } from '@attache/core';
import { issueClientCertificate } from '@attache/devkit';
import { provisionByClaim, readFleetProvisioning } from '@attache/uplink';
import t, { type Test } from 'tap';
import { FleetWorld, templateName } from './helpers/fleet-world.js';

const run = promisify(execFile);
t.on('complete', () => setImmediate(() => process.exit()));

async function setup(t: Test, overrides: Record<string, unknown> = {}, templateDeleted = false) {
  const world = await FleetWorld.start(t, { templateDeleted });
  const box = await world.box('00000000000000e1');
  const config = JSON.parse(await readFile(box.configPath, 'utf8'));
  Object.assign(config.uplink.provisioning, { timeoutMs: 2000 }, overrides);
  const uplink = validateConfig(config).uplink as UplinkConfig;
  const stateDir = join(box.dir, 'data', 'provisioning');
  const provision = (serialNumber: string | null = box.serial, gatewayId = box.thingName) =>
    provisionByClaim({ gatewayId, config: uplink, stateDir, serialNumber, log: nullLogger });
  return { world, box, uplink, stateDir, provision };
}

t.test(
  'the box refuses itself what cannot work: no serial number, no claim, another thing name',
  async (t) => {
    const { world, box, stateDir, provision, uplink } = await setup(t);
    await t.rejects(provision(null), { code: 'ATTACHE_PROVISIONING', message: /no serial number/ });
    t.match(await readFleetProvisioning(stateDir), { state: 'refused', reason: /no serial number/ });

    await t.rejects(provision(box.serial, 'ward-3-gw-1'), {
      code: 'ATTACHE_PROVISIONING',
      message: /named the thing "attache-00000000000000e1", but gateway\.id is "ward-3-gw-1"/,
    });
    await t.rejects(readFile(uplink.certFile), 'no certificate is stored for another thing');

    await rm(join(box.dir, 'claim.key'));
    await t.rejects(provision(), {
      code: 'ATTACHE_PROVISIONING',
      message: /claim certificate or key is missing/,
    });
    t.equal(world.emulator.requests.length, 2, 'the missing claim is noticed before any request');
    t.end();
  },
);

t.test('a claim the broker does not trust fails at once with the reason, and is retried', async (t) => {
  const { box, provision, stateDir } = await setup(t);
  await run('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', join(box.dir, 'claim.key'), '-out', join(box.dir, 'claim.crt'), '-subj', '/CN=forged'],
  ]);
  await t.rejects(provision(), {
    code: 'ATTACHE_UPLINK_CONNECT',
    message: /refused this gateway's certificate/,
  });
  t.match(await readFleetProvisioning(stateDir), {
    state: 'provisioning',
    reason: /retried in the next window/,
  });
  t.end();
});

t.test('an unknown template is the cloud refusal, with its code', async (t) => {
  // The claim's policy (the broker's ACL) allows its one template only: the template the cloud
  // does not have is that one, deleted.
  const { provision, stateDir } = await setup(t, {}, true);
  await t.rejects(provision(), {
    code: 'ATTACHE_PROVISIONING',
    message: `RegisterThing refused: ResourceNotFound (404): Template ${templateName} not found`,
  });
  t.match(await readFleetProvisioning(stateDir), { state: 'refused', step: 'certificate' });
  t.end();
});

t.test('a cloud that does not answer leaves the box provisioning, to retry', async (t) => {
  const { world, provision, stateDir } = await setup(t);
  const held = world.emulator.hold('create-from-csr');
  await t.rejects(provision(), { code: 'ATTACHE_TIMEOUT', message: /CreateCertificateFromCsr/ });
  t.match(await readFleetProvisioning(stateDir), {
    state: 'provisioning',
    step: 'key',
    reason: /retried in the next window/,
  });
  await held.release(false);
  await provision();
  t.match(await readFleetProvisioning(stateDir), { state: 'provisioned' });
  t.end();
});

t.test('a kept ownership token the cloud refuses gets one fresh certificate for the same key', async (t) => {
  const { world, box, uplink, provision, stateDir } = await setup(t);
  await mkdir(stateDir, { recursive: true });
  await mkdir(box.identityDir, { recursive: true });
  // A certificate for the box's key, kept with a token older than its hour.
  const old = await issueClientCertificate(world.pki, 'old', box.thingName);
  const pem = await readFile(old.keyFile, 'utf8');
  await writeFile(uplink.keyFile, pem, { mode: 0o600 });
  const kept = {
    certificateId: 'old',
    certificatePem: await readFile(old.certFile, 'utf8'),
    certificateOwnershipToken: 'expired',
    issuedAt: new Date(Date.now() - 3_600_000).toISOString(),
  };
  await writeFile(join(stateDir, 'pending.json'), JSON.stringify(kept));
  await provision();
  t.equal(await readFile(uplink.keyFile, 'utf8'), pem, 'the key is kept');
  t.equal(world.emulator.requests.map((r) => r.operation).join(' '), 'register create-from-csr register');
  t.same([...world.emulator.things.keys()], [box.thingName]);
  t.match(world.emulator.things.get(box.thingName), { templateName });
  t.end();
});

t.test('a kept certificate that is not for the key on the box is not used', async (t) => {
  const { world, uplink, box, provision, stateDir } = await setup(t);
  await mkdir(stateDir, { recursive: true });
  await mkdir(box.identityDir, { recursive: true });
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  await writeFile(uplink.keyFile, key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  const other = await issueClientCertificate(world.pki, 'other', box.thingName);
  const kept = {
    certificateId: 'other',
    certificatePem: await readFile(other.certFile, 'utf8'),
    certificateOwnershipToken: 'whatever',
    issuedAt: new Date().toISOString(),
  };
  await writeFile(join(stateDir, 'pending.json'), JSON.stringify(kept));
  await provision();
  t.equal(world.emulator.requests.map((r) => r.operation).join(' '), 'create-from-csr register');
  t.ok((await box.identity()).certificate, 'the stored certificate is for the key on the box');
  t.end();
});

t.end();
