// The Fleet Provisioning emulator, driven the way a box drives AWS: the SDK's own iotidentity client
// over a connection made with the claim certificate. It issues certificates that connect to the same
// broker, and refuses what AWS refuses, in AWS's error shape.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  createTestPki,
  issueClientCertificate,
  type MosquittoBroker,
  startMosquitto,
  type TestPki,
} from '@attache/devkit';
import { iotidentity, mqtt5 } from 'aws-iot-device-sdk-v2';
import t, { type Test } from 'tap';
import { SdkMqttChannel } from './helpers/jobs-emulator.js';
import { FleetProvisioningEmulator } from './helpers/provisioning-emulator.js';

const run = promisify(execFile);
t.on('complete', () => setImmediate(() => process.exit()));

interface World {
  dir: string;
  pki: TestPki;
  broker: MosquittoBroker;
  emulator: FleetProvisioningEmulator;
  claim: { certFile: string; keyFile: string };
}

async function world(
  t: Test,
  allowed: (serial: string) => boolean = () => true,
  templateKnown = true,
): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'attache-fpe-'));
  const pki = await createTestPki(join(dir, 'pki'), { thingName: 'unused' });
  const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
  const claim = await issueClientCertificate(pki, 'claim', 'claim');
  const emulator = await FleetProvisioningEmulator.start({
    pki,
    login: login(broker, pki, pki.subscriberCertFile, pki.subscriberKeyFile, 'fleet-provisioning'),
    templates: templateKnown
      ? {
          'attache-fleet': {
            thingName: (p) => `attache-${p.SerialNumber}`,
            hook: (p) => ({ allowProvisioning: allowed(p.SerialNumber ?? '') }),
          },
        }
      : {},
  });
  t.teardown(async () => {
    await emulator.stop();
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, pki, broker, emulator, claim };
}

function login(broker: MosquittoBroker, pki: TestPki, certFile: string, keyFile: string, clientId: string) {
  return { host: broker.host, port: broker.port, certFile, keyFile, caFile: pki.caFile, clientId };
}

/** A box's key and CSR, made with openssl. */
async function keyAndCsr(dir: string, cn: string): Promise<{ keyFile: string; csr: string }> {
  const keyFile = join(dir, `${cn}.key`);
  await run('openssl', [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    keyFile,
  ]);
  const { stdout } = await run('openssl', ['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`]);
  return { keyFile, csr: stdout };
}

/** The SDK's identity client over an MQTT 5 connection made with the claim. */
async function identityClient(t: Test, w: World, clientId: string) {
  const { iot } = await import('aws-iot-device-sdk-v2');
  const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
    w.broker.host,
    w.claim.certFile,
    w.claim.keyFile,
  );
  builder
    .withCertificateAuthorityFromPath(undefined, w.pki.caFile)
    .withPort(w.broker.port)
    .withConnectProperties({ clientId, keepAliveIntervalSeconds: 60 });
  const client = new mqtt5.Mqtt5Client(builder.build());
  const connected = new Promise<void>((resolve, reject) => {
    client.once('connectionSuccess', () => resolve());
    client.once('connectionFailure', (e) => reject(e.error));
  });
  client.start();
  await connected;
  const identity = iotidentity.IotIdentityClientv2.newFromMqtt5(client, {
    maxRequestResponseSubscriptions: 2,
    maxStreamingSubscriptions: 0,
    operationTimeoutInSeconds: 10,
  });
  t.teardown(() => {
    identity.close();
    client.stop();
    client.close();
  });
  return identity;
}

async function refusal(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    return (err as { modeledError?: Record<string, unknown> }).modeledError ?? { error: String(err) };
  }
  throw new Error('the request was accepted');
}

t.test('a box with the claim gets a certificate, becomes its thing and connects with it', async (t) => {
  const w = await world(t);
  const identity = await identityClient(t, w, 'box-1');
  const { keyFile, csr } = await keyAndCsr(w.dir, 'attache-0001');
  const issued = await identity.createCertificateFromCsr({ certificateSigningRequest: csr });
  t.match(issued.certificateId, /^[0-9a-f]{64}$/);
  t.equal(w.emulator.certificates.get(issued.certificateId ?? '')?.status, 'PENDING_ACTIVATION');
  const registered = await identity.registerThing({
    templateName: 'attache-fleet',
    certificateOwnershipToken: issued.certificateOwnershipToken ?? '',
    parameters: { SerialNumber: '0001' },
  });
  t.equal(registered.thingName, 'attache-0001');
  t.equal(w.emulator.certificates.get(issued.certificateId ?? '')?.status, 'ACTIVE');
  t.same([...(w.emulator.things.get('attache-0001')?.certificateIds ?? [])], [issued.certificateId]);

  const certFile = join(w.dir, 'box.crt');
  await writeFile(certFile, issued.certificatePem ?? '');
  const own = await SdkMqttChannel.connect(login(w.broker, w.pki, certFile, keyFile, 'attache-0001'));
  await own.publish('dt/attache/attache-0001/telemetry', Buffer.from('{}'));
  await own.close();
  t.end();
});

t.test('a template the cloud does not have is refused 404 ResourceNotFound', async (t) => {
  // The claim's ACL (its IoT policy) allows one template's topics only, so the unknown template is
  // the claim's own one, deleted in the cloud.
  const w = await world(t, () => true, false);
  const identity = await identityClient(t, w, 'box-3');
  const { csr } = await keyAndCsr(w.dir, 'attache-0003');
  const issued = await identity.createCertificateFromCsr({ certificateSigningRequest: csr });
  t.match(
    await refusal(
      identity.registerThing({
        templateName: 'attache-fleet',
        certificateOwnershipToken: issued.certificateOwnershipToken ?? '',
        parameters: { SerialNumber: '0003' },
      }),
    ),
    { statusCode: 404, errorCode: 'ResourceNotFound', errorMessage: /attache-fleet/ },
  );
  t.equal(w.emulator.things.size, 0, 'no thing was made');
});

t.test('refusals come in AWS error shape: bad CSR, bad token, the hook', async (t) => {
  const w = await world(t, (serial) => serial !== '0666');
  const identity = await identityClient(t, w, 'box-2');
  t.match(await refusal(identity.createCertificateFromCsr({ certificateSigningRequest: 'junk' })), {
    statusCode: 400,
    errorCode: 'InvalidPayload',
  });
  const { csr } = await keyAndCsr(w.dir, 'attache-0666');
  const issued = await identity.createCertificateFromCsr({ certificateSigningRequest: csr });
  const token = issued.certificateOwnershipToken ?? '';
  t.match(
    await refusal(
      identity.registerThing({
        templateName: 'attache-fleet',
        certificateOwnershipToken: 'forged',
        parameters: { SerialNumber: '0002' },
      }),
    ),
    { statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' },
  );
  t.match(
    await refusal(
      identity.registerThing({
        templateName: 'attache-fleet',
        certificateOwnershipToken: token,
        parameters: { SerialNumber: '0666' },
      }),
    ),
    { statusCode: 403, errorCode: 'AccessDenied', errorMessage: /pre-provisioning hook/ },
  );
  t.equal(w.emulator.things.size, 0, 'no thing was made');
  t.equal(w.emulator.certificates.get(issued.certificateId ?? '')?.status, 'PENDING_ACTIVATION');
  t.end();
});

t.test('an ownership token expires after an hour', async (t) => {
  let now = Date.now();
  const w = await world(t);
  await w.emulator.stop();
  const emulator = await FleetProvisioningEmulator.start({
    pki: w.pki,
    login: login(w.broker, w.pki, w.pki.subscriberCertFile, w.pki.subscriberKeyFile, 'fp-clock'),
    templates: { 'attache-fleet': {} },
    now: () => now,
  });
  t.teardown(() => emulator.stop());
  const identity = await identityClient(t, w, 'box-3');
  const { csr } = await keyAndCsr(w.dir, 'attache-0003');
  const issued = await identity.createCertificateFromCsr({ certificateSigningRequest: csr });
  now += 3_600_000;
  t.match(
    await refusal(
      identity.registerThing({
        templateName: 'attache-fleet',
        certificateOwnershipToken: issued.certificateOwnershipToken ?? '',
        parameters: { ThingName: 'attache-0003' },
      }),
    ),
    { errorCode: 'InvalidCertificateOwnershipToken' },
  );
  t.end();
});
t.end();
