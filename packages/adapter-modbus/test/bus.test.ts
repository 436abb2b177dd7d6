// Bus scheduling against the pymodbus server: one transaction at a time per bus, buses independent of
// each other, the poll schedule, the change filter's heartbeat and the back-off of a silent unit.
import { setTimeout as sleep } from 'node:timers/promises';
import { createModbusAdapters } from '@attache/adapter-modbus';
import { monotonicMs } from '@attache/core';
import { type LogEntry, recordingLogger, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { collector, observed, profileOf, tcpDevice, until } from './fixtures/helpers.js';
import { smallCase } from './fixtures/registers.js';

const profiles = profileOf([smallCase.register]);

t.test('devices sharing a TCP connection never have two requests in progress at once', async (t) => {
  // Each answer takes 100 ms, and both devices are due at the same instants: the second must wait.
  const server = await startModbusServer({
    transport: 'tcp',
    delayMs: 100,
    units: { 1: [smallCase.server], 2: [smallCase.server] },
  });
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const adapters = createModbusAdapters({
    devices: [
      tcpDevice('pump-1', server.port, { unitId: 1, pollIntervalMs: 500 }),
      tcpDevice('pump-2', server.port, { unitId: 2, pollIntervalMs: 500 }),
    ],
    profiles,
    sink,
  });
  t.teardown(() => Promise.all(adapters.map((a) => a.stop())));
  await Promise.all(adapters.map((a) => a.start()));
  const of = (id: string) => readings.filter((r) => r.deviceId === id).length;
  await until('six readings from each pump', () => of('pump-1') >= 6 && of('pump-2') >= 6);
  await Promise.all(adapters.map((a) => a.stop()));

  const requests = await server.requests();
  t.equal(new Set(requests.map((r) => r.peer)).size, 1, 'both devices share one connection');
  let queued = 0;
  for (const [i, r] of requests.entries()) {
    t.not(r.answered, null, `request ${i} (unit ${r.unit}) was answered`);
    const previous = requests[i - 1];
    if (previous?.answered == null) continue;
    t.ok(r.arrived >= previous.answered, `request ${i} was sent after the answer to request ${i - 1}`);
    // Sent right after the previous answer: it waited for the bus.
    if (r.unit !== previous.unit && r.arrived - previous.answered < 0.05) queued++;
  }
  t.ok(queued >= 3, `the second device waited for the bus in most rounds (${queued} times)`);
  for (const adapter of adapters) {
    const s = adapter.status();
    const unit = adapter.deviceId === 'pump-1' ? 1 : 2;
    t.equal(
      requests.filter((r) => r.unit === unit).length,
      s.polls,
      `${adapter.deviceId}: every poll reached the server`,
    );
    t.equal(of(adapter.deviceId), s.polls, `${adapter.deviceId}: every poll gave a reading`);
    t.equal(s.missedPolls, 0, `${adapter.deviceId}: no poll missed`);
    t.equal(s.unanswered, 0);
  }
});

t.test('a missing unit on one bus does not delay the devices on another bus', async (t) => {
  const busA = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
  t.teardown(() => busA.stop());
  const busB = await startModbusServer({
    transport: 'tcp',
    units: { 1: [smallCase.server], 2: [smallCase.server] },
  });
  t.teardown(() => busB.stop());
  const { sink, readings } = collector();
  // Unit 9 is not on bus A: each of its polls holds bus A for 600 ms, two of bus B's intervals.
  const adapters = createModbusAdapters({
    devices: [
      tcpDevice('vent-a1', busA.port, { unitId: 1, pollIntervalMs: 700, timeoutMs: 600 }),
      tcpDevice('ghost-a9', busA.port, { unitId: 9, pollIntervalMs: 700, timeoutMs: 600 }),
      tcpDevice('monitor-b1', busB.port, { unitId: 1, pollIntervalMs: 300 }),
      tcpDevice('monitor-b2', busB.port, { unitId: 2, pollIntervalMs: 300 }),
    ],
    profiles,
    sink,
  });
  t.teardown(() => Promise.all(adapters.map((a) => a.stop())));
  const [present, ghost, ...onB] = adapters;
  await Promise.all(adapters.map((a) => a.start()));
  await until('three timeouts of unit 9', () => (ghost?.status().unanswered ?? 0) >= 3);
  await Promise.all(adapters.map((a) => a.stop()));

  const g = ghost?.status();
  t.equal(g?.lastError?.code, 'ATTACHE_TIMEOUT', 'unit 9 timed out');
  t.equal(readings.filter((r) => r.deviceId === 'ghost-a9').length, 0);
  t.ok(
    readings.some((r) => r.deviceId === 'vent-a1'),
    'the unit present on bus A is still read',
  );
  t.equal(present?.status().unanswered, 0);
  for (const adapter of onB) {
    const s = adapter.status();
    const count = readings.filter((r) => r.deviceId === adapter.deviceId).length;
    t.ok(count >= 6, `${adapter.deviceId}: readings kept coming (${count})`);
    t.equal(count, s.polls, `${adapter.deviceId}: every poll gave a reading`);
    t.equal(s.missedPolls, 0, `${adapter.deviceId}: no poll missed while unit 9 timed out on bus A`);
    t.equal(s.lastError, undefined);
  }
});

t.test('the poll interval is kept, without drift, on a device that takes 150 ms to answer', async (t) => {
  const server = await startModbusServer({
    transport: 'tcp',
    delayMs: 150,
    units: { 1: [smallCase.server] },
  });
  t.teardown(() => server.stop());
  const { sink, readings } = collector();
  const [adapter] = createModbusAdapters({
    devices: [tcpDevice('ventilator-1', server.port, { pollIntervalMs: 500, timeoutMs: 1000 })],
    profiles,
    sink,
  });
  t.teardown(() => adapter?.stop());
  const started = monotonicMs();
  await adapter?.start();
  await sleep(3000);
  const s = adapter?.status();
  // Polls at 0, 500, 1000 … ms: one at once, then one per interval.
  const expected = Math.floor((monotonicMs() - started) / 500) + 1;
  t.ok(
    Math.abs((s?.polls ?? 0) - expected) <= 1,
    `${s?.polls} polls in ~3 s, ${expected} expected (a schedule that waited 500 ms after each answer would give 5)`,
  );
  t.equal(s?.missedPolls, 0);
  t.ok(readings.length >= expected - 2, 'the polls gave readings');
});

t.test(
  'changesOnly: a constant value is stored only at the heartbeat, other polls count as unchanged',
  async (t) => {
    const server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
    t.teardown(() => server.stop());
    const { sink, readings } = collector();
    const heartbeatMs = 1000;
    const intervalMs = 200;
    const [adapter] = createModbusAdapters({
      devices: [
        tcpDevice('fridge-4', server.port, {
          pollIntervalMs: intervalMs,
          // The schema's minimum heartbeat.
          changesOnly: { deadband: 0.5, heartbeatSeconds: heartbeatMs / 1000 },
        }),
      ],
      profiles,
      sink,
    });
    t.teardown(() => adapter?.stop());
    await adapter?.start();
    await until('the first reading and three heartbeats', () => readings.length >= 4, 8000);
    await adapter?.stop();

    for (const [i, reading] of readings.entries()) {
      t.equal(observed(reading, 'temp'), smallCase.want, `reading ${i} holds the value`);
      const previous = readings[i - 1];
      if (previous === undefined) continue;
      const gap = reading.monotonicMs - previous.monotonicMs;
      t.ok(
        gap >= heartbeatMs,
        `reading ${i} came ${Math.round(gap)} ms after the one before: not before the heartbeat`,
      );
      t.ok(gap < heartbeatMs + intervalMs + 500, `reading ${i} came at the first poll after the heartbeat`);
    }
    const s = adapter?.status();
    t.equal(s?.stored, readings.length);
    t.equal(
      s?.unchanged,
      (s?.frames ?? 0) - readings.length,
      'every other answered poll counted as unchanged',
    );
    t.ok(
      (s?.unchanged ?? 0) >= 3 * (readings.length - 1),
      'several polls between heartbeats were not stored',
    );
  },
);

t.test(
  'a unit that stops answering is polled less and less often, and every interval again once it answers',
  async (t) => {
    const server = await startModbusServer({
      transport: 'tcp',
      units: { 1: [smallCase.server], 2: [smallCase.server] },
    });
    t.teardown(() => server.stop());
    const { sink, readings } = collector();
    const entries: LogEntry[] = [];
    const intervalMs = 200;
    const [live, flaky] = createModbusAdapters({
      devices: [
        tcpDevice('fridge-1', server.port, { unitId: 1, pollIntervalMs: intervalMs, timeoutMs: 100 }),
        tcpDevice('fridge-2', server.port, { unitId: 2, pollIntervalMs: intervalMs, timeoutMs: 100 }),
      ],
      profiles,
      sink,
      logger: recordingLogger(entries),
    });
    t.teardown(async () => {
      await live?.stop();
      await flaky?.stop();
    });
    const fromTwo = () => readings.filter((r) => r.deviceId === 'fridge-2').length;
    await live?.start();
    await flaky?.start();
    await until('two readings from unit 2', () => fromTwo() >= 2);

    await server.silence(2, true);
    const livePolls = live?.status().polls ?? 0;
    // Polled after 1, 1, 2, 4 intervals, then waits 8: 1 + 3 + 7 polls skipped.
    await until('unit 2 backed off three times', () => (flaky?.status().skippedPolls ?? 0) >= 11);
    const silent = flaky?.status();
    t.equal(silent?.lastError?.code, 'ATTACHE_TIMEOUT');
    t.equal(silent?.state, 'disconnected');
    const silentPolls = silent?.unanswered ?? 0;
    const liveSince = (live?.status().polls ?? 0) - livePolls;
    t.equal(silentPolls, 4, 'unit 2 was polled 4 times while silent (11 polls skipped)');
    t.ok(liveSince > silentPolls, `while unit 1 was polled ${liveSince} times`);
    t.equal(
      entries.filter(
        (e) => e.deviceId === 'fridge-2' && e.msg === 'device does not answer: polling it less often',
      ).length,
      1,
      'the back-off is logged once',
    );
    t.equal(live?.status().skippedPolls, 0, 'the unit that answers is not backed off');

    await server.silence(2, false);
    const before = fromTwo();
    const answeredAt = monotonicMs();
    // The next poll is due within the current back-off (2^(n-1) intervals after n silent polls),
    // one step more if a poll was in flight.
    const boundMs = 2 ** silentPolls * intervalMs + 1000;
    await until('a reading once unit 2 answers again', () => fromTwo() > before, boundMs);
    t.ok(monotonicMs() - answeredAt <= boundMs, 'read again within the back-off');
    const recovered = flaky?.status();
    await sleep(5 * intervalMs);
    const after = flaky?.status();
    const polls = (after?.polls ?? 0) - (recovered?.polls ?? 0);
    t.ok(polls >= 4, `polled every interval again (${polls} polls in 5 intervals)`);
    t.equal(after?.skippedPolls, recovered?.skippedPolls, 'no poll skipped once it answers');
    t.equal(
      fromTwo() - before,
      (after?.frames ?? 0) - (silent?.frames ?? 0),
      'every poll since gave a reading',
    );
    t.equal(after?.state, 'connected');
  },
);
