import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '@attache/core';
import {
  createTestPki,
  issueClientCertificate,
  loadIotPolicies,
  type MosquittoBroker,
  mosquittoAcl,
  profileFormat,
  publishMessage,
  startMosquitto,
  subscribeTopic,
  type TestPki,
  type TopicSubscriber,
} from '@attache/devkit';
import { JobsTopics } from '@attache/jobs';
import { uplinkTopics } from '@attache/uplink/policy';
import t from 'tap';
import { Stack } from './helpers/stack.js';

// The test broker enforces the fleet's AWS IoT policies (cloud/policies/iot-policies.json) as a
// mosquitto ACL. Mosquitto grants every SUBSCRIBE and drops what a client may not read, and answers a
// refused QoS 1 PUBLISH with PUBACK 0x87 (MQTT 5): each denial below is made visible either by that
// code, or by a later message on an allowed topic arriving while the refused one never does (the
// broker delivers one client's messages in order).

const notAuthorized = 0x87;
const dir = t.testdir();
const pki: TestPki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-a' });
const gwA = { certFile: pki.clientCertFile, keyFile: pki.clientKeyFile };
const gwB = await issueClientCertificate(pki, 'gw-b', 'gw-b');
const claim = await issueClientCertificate(pki, 'claim', 'claim');
const broker: MosquittoBroker = await startMosquitto({ dir: join(dir, 'broker'), pki });
t.teardown(() => broker.stop());

/** Every topic the gateway's own code publishes on and subscribes to, with the default config. */
function gatewayTopics(thing: string): { publish: string[]; subscribe: string[] } {
  const config = validateConfig({
    version: 1,
    gateway: { id: thing, dataDir: '/var/lib/attache' },
    devices: [
      { id: 'd', adapter: 'rs232', port: { path: '/dev/serial/by-id/x' }, format: profileFormat('nonin') },
    ],
    uplink: { endpoint: 'abc-ats.iot.eu-central-1.amazonaws.com', certFile: '/c', keyFile: '/k' },
  });
  if (!config.uplink) throw new Error('the config has an uplink');
  const uplink = uplinkTopics(thing, config.uplink);
  const ingest = uplinkTopics(thing, { ...config.uplink, basicIngestRule: 'attache_ingest' });
  const shadow = uplink.shadow;
  if (!shadow) throw new Error('the default config has a named shadow');
  const jobs = new JobsTopics(thing);
  const update = jobs.update('job-1');
  return {
    publish: [
      uplink.telemetry,
      ingest.telemetry,
      uplink.events,
      uplink.state,
      shadow.get,
      shadow.update,
      jobs.startNext,
      update,
    ],
    subscribe: [
      shadow.getAccepted,
      shadow.getRejected,
      shadow.updateAccepted,
      shadow.updateRejected,
      shadow.updateDelta,
      jobs.notifyNext,
      `${jobs.startNext}/accepted`,
      `${jobs.startNext}/rejected`,
      `${update}/accepted`,
      `${update}/rejected`,
    ],
  };
}

/** The payloads `subscriber` received once `last` arrived (or rejects after 10 s without a message). */
async function receivedUntil(subscriber: TopicSubscriber, last: string): Promise<string[]> {
  while (!subscriber.messages.some((m) => m.toString() === last)) {
    await subscriber.waitFor(subscriber.messages.length + 1, 30_000);
  }
  return subscriber.messages.map(String);
}

const own = gatewayTopics('gw-a');
const others = gatewayTopics('gw-b');

t.test('a gateway may publish on every topic its code uses, and on no other gateway\u2019s', async (t) => {
  for (const topic of own.publish) {
    t.ok(
      (await publishMessage({ broker, pki, topic, payload: topic, identity: gwA })) < 0x80,
      `allowed: ${topic}`,
    );
  }
  const service = await subscribeTopic({
    broker,
    pki,
    topic: ['dt/attache/gw-b/#', '$aws/things/gw-b/#', '$aws/rules/#'],
  });
  t.teardown(service.stop);
  for (const topic of others.publish) {
    t.equal(
      await publishMessage({ broker, pki, topic, payload: topic, identity: gwA }),
      notAuthorized,
      `refused: ${topic}`,
    );
  }
  await publishMessage({
    broker,
    pki,
    topic: 'dt/attache/gw-b/state',
    payload: 'gw-b itself',
    identity: gwB,
  });
  t.same(
    (await service.waitFor(1, 30_000)).map(String),
    ['gw-b itself'],
    'the service saw none of gw-a\u2019s attempts',
  );
});

t.test('a gateway receives every answer its code waits for, and nothing of another gateway', async (t) => {
  const sentinel = own.subscribe.at(-1) as string;
  const reader = await subscribeTopic({
    broker,
    pki,
    identity: gwA,
    topic: [...own.subscribe, ...others.subscribe, '$aws/things/+/jobs/notify-next', '$aws/things/#', 'dt/#'],
  });
  t.teardown(reader.stop);
  for (const topic of [...others.subscribe, 'dt/attache/gw-b/telemetry', ...own.subscribe]) {
    t.ok(
      (await publishMessage({ broker, pki, topic, payload: topic })) < 0x80,
      `the service published on ${topic}`,
    );
  }
  const received = await receivedUntil(reader, sentinel);
  // Subscriptions overlap (an exact topic and a wildcard), so mosquitto may deliver a message twice.
  t.same([...new Set(received)], own.subscribe, 'exactly its own shadow and jobs answers, in order');
});

t.test('the claim may use Fleet Provisioning of its template only', async (t) => {
  const template = 'attache-fleet';
  const requests = [
    '$aws/certificates/create-from-csr/json',
    `$aws/provisioning-templates/${template}/provision/json`,
  ];
  const answers = requests.flatMap((r) => [`${r}/accepted`, `${r}/rejected`]);
  for (const topic of requests) {
    t.ok(
      (await publishMessage({ broker, pki, topic, payload: 'x', identity: claim })) < 0x80,
      `allowed: ${topic}`,
    );
  }
  const refused = [
    '$aws/certificates/create/json',
    '$aws/provisioning-templates/other-template/provision/json',
    ...own.publish,
    'dt/attache/claim/telemetry',
  ];
  for (const topic of refused) {
    t.equal(
      await publishMessage({ broker, pki, topic, payload: 'x', identity: claim }),
      notAuthorized,
      `refused: ${topic}`,
    );
  }
  const other = '$aws/provisioning-templates/other-template/provision/json';
  const reader = await subscribeTopic({
    broker,
    pki,
    identity: claim,
    topic: [...answers, `${other}/accepted`, '$aws/things/#', '$aws/certificates/#', 'dt/#'],
  });
  t.teardown(reader.stop);
  for (const topic of [`${other}/accepted`, ...own.subscribe, 'dt/attache/gw-a/state', ...answers]) {
    await publishMessage({ broker, pki, topic, payload: topic });
  }
  const received = await receivedUntil(reader, answers.at(-1) as string);
  t.same([...new Set(received)], answers, 'only the answers of its own template');
});

t.test('a topic the gateway uses but the policy forgets fails its window', async (t) => {
  const policies = loadIotPolicies();
  const eventsTopic = ['topic/dt/attache/$', '{iot:Connection.Thing.ThingName}/events'].join('');
  const forgetful = {
    ...policies,
    gateway: {
      ...policies.gateway,
      Statement: policies.gateway.Statement.map((s) => ({
        ...s,
        Resource: s.Resource.filter((r) => r !== eventsTopic),
      })),
    },
  };
  const stack = await Stack.start(t, { acl: mosquittoAcl({ policies: forgetful }) });
  const events = await stack.subscribe('events');
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const refused = await stack.run('sync', '--json');
  t.not(refused.code, 0, 'the window fails');
  // Mosquitto answers PUBACK 0x87; the client may also see the connection end before it reads it.
  t.match(JSON.parse(refused.stdout), { outcome: 'failed', error: { code: 'ATTACHE_UPLINK_PUBLISH' } });
  t.equal(events.messages.length, 0, 'no event reached the cloud');

  // The same gateway and broker with the whole policy: the window drains.
  await writeFile(join(stack.dir, 'broker', 'acl'), mosquittoAcl());
  await stack.broker.restart();
  const eventsAgain = await stack.subscribe('events');
  const drained = await stack.run('sync', '--json');
  t.equal(drained.code, 0, `with the events topic in the policy the window drains: ${drained.stdout}`);
  t.ok((await eventsAgain.waitFor(1, 30_000)).length > 0, 'the events arrive');
});
