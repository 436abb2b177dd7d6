// End-to-end: a serial device (a socat pty) killed and restored under a real `attache run`. Its loss
// and return are journaled as they happen, not at the next 5 s check, and reach the cloud in order.
import { join } from 'node:path';
import { LineDeviceSimulator, openPtyPair } from '@attache/devkit';
import t from 'tap';
import { Stack, thingName } from './helpers/stack.js';

t.test('a device killed and restored: status and the event journal show lost and back', async (t) => {
  const stack = await Stack.start(t);
  const gateway = stack.startGateway();
  /** The `n`th log line with message `msg` and `key` equal to `value` (bounded wait). */
  const nth = (msg: string, key: string, value: string, n: number) =>
    gateway.waitForLog((line) => {
      const all = gateway.logs.filter((l) => l.msg === msg && l[key] === value);
      return all.indexOf(line) === n - 1;
    }, 10_000);
  const event = (type: string, n = 1) => nth('gateway event', 'type', type, n);
  const state = (value: string, n = 1) => nth('adapter state', 'state', value, n);
  await stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
  await event('device.connected');

  // Killed: socat ends, the port reads EIO. Restored as soon as `attache status` shows the loss,
  // before any 5 s check could have seen it.
  const killedAt = Date.now();
  await stack.device.close();
  await stack.pty.close();
  const lost = await stack.statusUntil((s) => s.adapters[0]?.state === 'disconnected');
  t.equal(lost.adapters[0]?.state, 'disconnected', 'attache status shows the device lost');
  const again = await openPtyPair(join(stack.dir, 'pty'));
  t.teardown(() => again.close());
  const device = new LineDeviceSimulator({ path: again.devicePath, profile: 'nonin' });
  await device.open();
  const restoredAt = Date.now();
  t.teardown(() => device.close());
  const back = await stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
  t.equal(back.adapters[0]?.state, 'connected', 'attache status shows it back');

  const lostEvent = await event('device.lost');
  const backEvent = await event('device.connected', 2);
  const lostState = await state('disconnected');
  const backState = await state('connected', 2);
  t.ok(
    (lostEvent.time as number) <= (backState.time as number),
    'the loss is journaled while the device is away',
  );
  const ms = (from: unknown, to: unknown) => `${Number(to) - Number(from)} ms`;
  t.comment(
    `killed → device.lost ${ms(killedAt, lostEvent.time)} (adapter state → event ${ms(lostState.time, lostEvent.time)}); ` +
      `restored → device.connected ${ms(restoredAt, backEvent.time)} (adapter state → event ${ms(backState.time, backEvent.time)})`,
  );

  const events = await stack.subscribe('events');
  const sync = JSON.parse((await stack.run('sync', '--json')).stdout) as { outcome: string; events: number };
  t.equal(sync.outcome, 'drained', 'the window drains');
  const received = (await events.waitFor(sync.events, 30_000)).map(
    (m) =>
      JSON.parse(m.toString('utf8')) as { type: string; gatewayId: string; detail: Record<string, unknown> },
  );
  t.same(
    received
      .filter((e) => e.type.startsWith('device.'))
      .map((e) => [e.gatewayId, e.type, e.detail.deviceId, e.detail.lastErrorCode]),
    [
      [thingName, 'device.connected', 'spo2-bed7', undefined],
      [thingName, 'device.lost', 'spo2-bed7', 'ATTACHE_PORT_NOT_OPEN'],
      [thingName, 'device.connected', 'spo2-bed7', undefined],
    ],
    'the cloud gets connected, lost, connected: each once, in order',
  );
});
