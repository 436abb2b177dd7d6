// Bus scheduling against the pymodbus server: one transaction at a time per bus, buses independent of
// each other, the poll schedule, the change filter's heartbeat and the back-off of a silent unit.
// The poll schedules run on a ManualClock, so they do not depend on how fast this machine is; the
// requests, answers and timeouts on the bus are real.
import { createModbusAdapters } from '@attache/adapter-modbus';
import { ManualClock } from '@attache/core';
import { type LogEntry, recordingLogger, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { collector, observed, profileOf, step, tcpDevice, until } from './fixtures/helpers.js';
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
  const clock = new ManualClock();
  const adapters = createModbusAdapters({
    devices: [
      tcpDevice('pump-1', server.port, { unitId: 1, pollIntervalMs: 500, timeoutMs: 10_000 }),
      tcpDevice('pump-2', server.port, { unitId: 2, pollIntervalMs: 500, timeoutMs: 10_000 }),
    ],
    profiles,
    sink,
    clock,
  });
  t.teardown(() => Promise.all(adapters.map((a) => a.stop())));
  await Promise.all(adapters.map((a) => a.start()));
  await step(clock, adapters, 0);
  for (let round = 1; round < 6; round++) await step(clock, adapters, 500);
  await Promise.all(adapters.map((a) => a.stop()));

  const requests = await server.requests();
  t.equal(new Set(requests.map((r) => r.peer)).size, 1, 'both devices share one connection');
  t.same(
    requests.map((r) => r.unit),
    [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2],
    'both devices were due at the same 6 instants and were asked in turn',
  );
  t.same(
    requests.flatMap((r, i) => (r.answered === null ? [i] : [])),
    [],
    'every request was answered',
  );
  t.same(
    requests.flatMap((r, i) => {
      const previous = requests[i - 1];
      return previous?.answered != null && r.arrived < previous.answered ? [i] : [];
    }),
    [],
    'each request was sent only after the answer to the one before',
  );
  for (const adapter of adapters) {
    const s = adapter.status();
    const unit = adapter.deviceId === 'pump-1' ? 1 : 2;
    t.match(
      s,
      { polls: 6, frames: 6, missedPolls: 0, unanswered: 0 },
      `${adapter.deviceId}: polled at each of the 6 instants, each answered, none missed`,
    );
    t.equal(
      requests.filter((r) => r.unit === unit).length,
      6,
      `${adapter.deviceId}: every poll reached the server`,
    );
    t.equal(
      readings.filter((r) => r.deviceId === adapter.deviceId).length,
      6,
      `${adapter.deviceId}: every poll gave a reading`,
    );
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
  const clock = new ManualClock();
  // Unit 9 is not on bus A: its poll holds bus A for its whole timeout, while bus B is polled 6 times.
  const adapters = createModbusAdapters({
    devices: [
      tcpDevice('vent-a1', busA.port, { unitId: 1, pollIntervalMs: 300, timeoutMs: 10_000 }),
      tcpDevice('ghost-a9', busA.port, { unitId: 9, pollIntervalMs: 300, timeoutMs: 4000 }),
      tcpDevice('monitor-b1', busB.port, { unitId: 1, pollIntervalMs: 300, timeoutMs: 10_000 }),
      tcpDevice('monitor-b2', busB.port, { unitId: 2, pollIntervalMs: 300, timeoutMs: 10_000 }),
    ],
    profiles,
    sink,
    clock,
  });
  t.teardown(() => Promise.all(adapters.map((a) => a.stop())));
  const [present, ghost, ...onB] = adapters;
  const of = (id: string) => readings.filter((r) => r.deviceId === id).length;
  await Promise.all(adapters.map((a) => a.start()));
  await clock.advance(0);
  for (let round = 1; round <= 6; round++) {
    await until(`round ${round} of bus B`, () => of('monitor-b1') === round && of('monitor-b2') === round);
    if (round < 6) await clock.advance(300);
  }
  const whileWaiting = ghost?.status();
  await until('the timeout of unit 9', () => (ghost?.status().unanswered ?? 0) === 1);
  await Promise.all(adapters.map((a) => a.stop()));

  t.match(
    whileWaiting,
    { polls: 1, unanswered: 0 },
    'bus B was read 6 times while unit 9 was still waiting for its first answer',
  );
  t.equal(ghost?.status().lastError?.code, 'ATTACHE_TIMEOUT', 'unit 9 timed out');
  t.equal(of('ghost-a9'), 0);
  t.ok(of('vent-a1') >= 1, 'the unit present on bus A is still read');
  t.equal(present?.status().unanswered, 0);
  for (const adapter of onB) {
    t.match(
      adapter.status(),
      { polls: 6, stored: 6, missedPolls: 0, lastError: undefined },
      `${adapter.deviceId}: every poll gave a reading, none missed while unit 9 timed out on bus A`,
    );
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
  const clock = new ManualClock();
  const adapters = createModbusAdapters({
    devices: [tcpDevice('ventilator-1', server.port, { pollIntervalMs: 500, timeoutMs: 10_000 })],
    profiles,
    sink,
    clock,
  });
  const [adapter] = adapters;
  t.teardown(() => adapter?.stop());
  await adapter?.start();
  // Polls due at 0, 500, 1000 … ms: each answer takes 150 ms of the interval, and the next poll comes
  // 350 ms after it (a schedule that waited 500 ms after each answer would poll 150 ms later each time).
  const lateBy: number[] = [];
  await clock.advance(0);
  for (let poll = 1; poll <= 6; poll++) {
    await clock.advance(150);
    await until(`answer ${poll}`, () => readings.length === poll && clock.pending === 1);
    if (poll === 6) break;
    await clock.advance(349);
    const early = adapter?.status().polls;
    await clock.advance(1);
    lateBy.push((adapter?.status().polls ?? 0) - (early ?? 0) === 1 && early === poll ? 0 : 1);
  }
  t.same(lateBy, [0, 0, 0, 0, 0], 'each poll started exactly one interval after the one before');
  t.match(adapter?.status(), { polls: 6, frames: 6, stored: 6, missedPolls: 0 }, 'every poll gave a reading');
});

t.test(
  'changesOnly: a constant value is stored only at the heartbeat, other polls count as unchanged',
  async (t) => {
    const server = await startModbusServer({ transport: 'tcp', units: { 1: [smallCase.server] } });
    t.teardown(() => server.stop());
    const { sink, readings } = collector();
    const clock = new ManualClock();
    const heartbeatMs = 1000;
    const intervalMs = 200;
    const adapters = createModbusAdapters({
      devices: [
        tcpDevice('fridge-4', server.port, {
          pollIntervalMs: intervalMs,
          timeoutMs: 10_000,
          // The schema's minimum heartbeat.
          changesOnly: { deadband: 0.5, heartbeatSeconds: heartbeatMs / 1000 },
        }),
      ],
      profiles,
      sink,
      clock,
    });
    const [adapter] = adapters;
    t.teardown(() => adapter?.stop());
    const started = clock.monotonicMs();
    await adapter?.start();
    // Polls at 0, 200 … 3000 ms.
    await step(clock, adapters, 0);
    for (let poll = 1; poll <= 15; poll++) await step(clock, adapters, intervalMs);
    await adapter?.stop();

    t.same(
      readings.map((r) => observed(r, 'temp')),
      [smallCase.want, smallCase.want, smallCase.want, smallCase.want],
      'each stored reading holds the value',
    );
    t.same(
      readings.map((r) => r.monotonicMs - started),
      [0, 1000, 2000, 3000],
      'stored at the first poll, then at the first poll at or after each heartbeat',
    );
    t.match(
      adapter?.status(),
      { frames: 16, stored: 4, unchanged: 12 },
      'the 12 other answered polls counted as unchanged, not stored',
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
    const clock = new ManualClock();
    const intervalMs = 200;
    const adapters = createModbusAdapters({
      devices: [
        tcpDevice('fridge-1', server.port, { unitId: 1, pollIntervalMs: intervalMs, timeoutMs: 10_000 }),
        tcpDevice('fridge-2', server.port, { unitId: 2, pollIntervalMs: intervalMs, timeoutMs: 1500 }),
      ],
      profiles,
      sink,
      logger: recordingLogger(entries),
      clock,
    });
    const [live, flaky] = adapters;
    t.teardown(async () => {
      await live?.stop();
      await flaky?.stop();
    });
    const fromTwo = () => readings.filter((r) => r.deviceId === 'fridge-2').length;
    await live?.start();
    await flaky?.start();
    await step(clock, adapters, 0);
    await step(clock, adapters, intervalMs);
    t.equal(fromTwo(), 2, 'two readings from unit 2');

    await server.silence(2, true);
    const livePolls = live?.status().polls ?? 0;
    // Polled after 1, 1, 2, 4 intervals, then waits 8: 1 + 3 + 7 polls skipped.
    const polledAt: number[] = [];
    for (let interval = 1; interval <= 8; interval++) {
      const before = flaky?.status().polls;
      await step(clock, adapters, intervalMs);
      if (flaky?.status().polls !== before) polledAt.push(interval);
    }
    const silent = flaky?.status();
    t.same(polledAt, [1, 2, 4, 8], 'unit 2 was polled after 1, 1, 2 and 4 intervals while silent');
    t.match(
      silent,
      { unanswered: 4, skippedPolls: 11, state: 'disconnected', lastError: { code: 'ATTACHE_TIMEOUT' } },
      'its 4 polls timed out and 11 were skipped',
    );
    t.equal((live?.status().polls ?? 0) - livePolls, 8, 'while unit 1 was polled at each of the 8 intervals');
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
    let waited = 0;
    while (fromTwo() === before && waited < 20) {
      await step(clock, adapters, intervalMs);
      waited++;
    }
    t.equal(waited, 8, 'read again at the end of the back-off, 8 intervals after its last poll');
    const recovered = flaky?.status();
    for (let interval = 1; interval <= 5; interval++) await step(clock, adapters, intervalMs);
    const after = flaky?.status();
    t.equal((after?.polls ?? 0) - (recovered?.polls ?? 0), 5, 'polled every interval again (5 in 5)');
    t.equal(after?.skippedPolls, recovered?.skippedPolls, 'no poll skipped once it answers');
    t.equal(
      fromTwo() - before,
      (after?.frames ?? 0) - (silent?.frames ?? 0),
      'every poll since gave a reading',
    );
    t.equal(after?.state, 'connected');
  },
);
