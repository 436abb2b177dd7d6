// Federated routing (uplink.routes): the records of a routed device go only to its route's broker,
// with the route's own certificate, from their own outbox; the other device's go to the default
// broker. Two mosquitto brokers, each with its own PKI, stand in for two AWS IoT endpoints.
import { join } from 'node:path';
import {
  createTestPki,
  LineDeviceSimulator,
  openPtyPair,
  profileFormat,
  startMosquitto,
  subscribeTopic,
  type TopicSubscriber,
} from '@attache/devkit';
import t from 'tap';
import { recordsOf, Stack, thingName, topic } from './helpers/stack.js';

type Json = Record<string, unknown>;
const devicesOf = (s: TopicSubscriber) => [...new Set(recordsOf(s.messages).map((r) => r.deviceId))];
const seqsOf = (s: TopicSubscriber) => recordsOf(s.messages).map((r) => r.seq);

t.test('each record goes only to its route; a route that is down keeps its records', async (t) => {
  const stack = await Stack.start(t);
  const pkiB = await createTestPki(join(stack.dir, 'pki-b'), { thingName });
  const brokerB = await startMosquitto({ dir: join(stack.dir, 'broker-b'), pki: pkiB });
  t.teardown(() => brokerB.stop());
  const ptyB = await openPtyPair(join(stack.dir, 'pty-b'));
  const deviceB = new LineDeviceSimulator({ path: ptyB.devicePath, profile: 'nonin' });
  await deviceB.open();
  t.teardown(async () => {
    await deviceB.close();
    await ptyB.close();
  });
  const config = stack.config() as Json & { devices: Json[]; uplink: Json };
  config.devices.push({
    id: 'spo2-bed9',
    adapter: 'rs232',
    port: { path: ptyB.gatewayPath, stopBits: 2, reconnectMs: 200 },
    format: profileFormat('nonin'),
  });
  config.uplink.routes = [
    {
      name: 'site-b',
      endpoint: brokerB.host,
      port: brokerB.port,
      certFile: pkiB.clientCertFile,
      keyFile: pkiB.clientKeyFile,
      caFile: pkiB.caFile,
      devices: ['spo2-bed9'],
    },
  ];
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  await gateway.waitForLog((l) => l.msg === 'gateway started');
  const onA = await stack.subscribe();
  let onB = await subscribeTopic({ broker: brokerB, pki: pkiB, topic });
  t.teardown(() => onB.stop());
  const stored = (want: number[]) =>
    stack.statusUntil((s) => s.adapters.map((a) => a.stored).join() === want.join());
  const sync = async () => JSON.parse((await stack.run('sync', '--json')).stdout) as Json;

  for (let i = 0; i < 3; i++) await stack.device.sendReading();
  for (let i = 0; i < 2; i++) await deviceB.sendReading();
  await stored([3, 2]);
  const first = await sync();
  t.match(first, {
    outcome: 'drained',
    records: 3,
    routes: { 'site-b': { outcome: 'drained', records: 2 } },
  });
  await onA.waitFor(1, 30_000);
  await onB.waitFor(1, 30_000);
  t.same(devicesOf(onA), ['spo2-bed7'], 'the default broker got only the default device');
  t.same(devicesOf(onB), ['spo2-bed9'], "the route's broker got only the routed device");
  t.same(seqsOf(onA), [1, 2, 3]);
  t.same(seqsOf(onB), [1, 2], 'the route keeps its own contiguous seq range');

  await brokerB.stop();
  await onB.stop();
  for (let i = 0; i < 2; i++) await stack.device.sendReading();
  for (let i = 0; i < 2; i++) await deviceB.sendReading();
  await stored([5, 4]);
  const down = await sync();
  t.match(down, { outcome: 'failed', records: 2, routes: { 'site-b': { outcome: 'failed', records: 0 } } });
  t.match((down.error as Json).message, /^route site-b: .*unreachable/, 'the failure names the route');
  await onA.waitFor(2, 30_000);
  t.same(seqsOf(onA), [1, 2, 3, 4, 5], 'the default route drained while the other was down');
  const waiting = JSON.parse((await stack.run('status', '--json')).stdout) as Json & {
    backlog: Json;
    routes: Record<string, Json>;
  };
  t.match(waiting.backlog, { records: 0 }, 'status: the default outbox is empty');
  t.match(waiting.routes, { 'site-b': { records: 2 } }, "status: the route's records are waiting");
  t.match((await stack.run('status')).stdout, /\n {2}route site-b: 2 records, /);

  await brokerB.restart();
  onB = await subscribeTopic({ broker: brokerB, pki: pkiB, topic });
  const back = await sync();
  t.match(back, { outcome: 'drained', routes: { 'site-b': { outcome: 'drained', records: 2 } } });
  await onB.waitFor(1, 30_000);
  t.same(seqsOf(onB), [3, 4], 'the records kept while the route was down arrive once it is back');
  t.same(devicesOf(onB), ['spo2-bed9']);
  await gateway.stop();
  const stopped = JSON.parse((await stack.run('status', '--json')).stdout) as Json;
  t.match(stopped, { running: false, routes: { 'site-b': { records: 0, nextSeq: 5 } } }, 'also when stopped');
});

t.test('a config whose routes overlap or name unknown devices is refused, by run and validate', async (t) => {
  const stack = await Stack.start(t);
  const config = stack.config() as Json & { uplink: Json };
  const route = (name: string, devices: string[]) => ({
    name,
    endpoint: 'localhost',
    certFile: stack.pki.clientCertFile,
    keyFile: stack.pki.clientKeyFile,
    devices,
  });
  config.uplink.routes = [route('a', ['spo2-bed7']), route('b', ['spo2-bed7', 'no-such-device'])];
  await stack.writeConfig(config);
  const gateway = stack.startGateway();
  t.equal(await gateway.exited, 78, 'attache run exits with the config error status');
  const validate = await stack.run('config', 'validate');
  t.equal(validate.code, 78, 'so does attache config validate, before the box is deployed');
  t.match(validate.stderr, /\/uplink\/routes\/1\/devices\/0: .*already routed to "a"/);
  t.match(validate.stderr, /\/uplink\/routes\/1\/devices\/1: .*no device "no-such-device"/);
});
