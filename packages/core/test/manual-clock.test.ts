import t from 'tap';
import { ManualClock, systemClock } from '../src/index.js';

t.test('timers fire in time order, each at its own time, as the clock advances', async (t) => {
  const clock = new ManualClock({ now: 1_000, monotonicMs: 50 });
  const fired: Array<[string, number, number]> = [];
  clock.setTimeout(() => fired.push(['b', clock.now(), clock.monotonicMs()]), 200);
  clock.setTimeout(() => {
    fired.push(['a', clock.now(), clock.monotonicMs()]);
    clock.setTimeout(() => fired.push(['c', clock.now(), clock.monotonicMs()]), 50);
  }, 100);
  const cancelled = clock.setTimeout(() => fired.push(['never', 0, 0]), 10);
  cancelled.cancel();
  t.equal(clock.pending, 2, 'the cancelled timer is not pending');
  await clock.advance(99);
  t.same(fired, [], 'nothing is due before 100 ms');
  await clock.advance(200);
  t.same(fired, [
    ['a', 1_100, 150],
    ['c', 1_150, 200],
    ['b', 1_200, 250],
  ]);
  t.equal(clock.now(), 1_299, 'the clock ends where it was told');
  t.equal(clock.pending, 0);
});

t.test('a timer started by a settled promise inside a timer still fires within the advance', async (t) => {
  const clock = new ManualClock();
  let polls = 0;
  const poll = () => {
    polls++;
    void Promise.resolve().then(() => clock.setTimeout(poll, 1_000));
  };
  clock.setTimeout(poll, 1_000);
  await clock.advance(5_000);
  t.equal(polls, 5, 'five polls in five seconds');
});

t.test('the system clock reads real time and its timers fire', async (t) => {
  const before = Date.now();
  t.ok(systemClock.now() >= before);
  t.ok(systemClock.monotonicMs() > 0);
  // The system clock's timers never keep the process alive: this test holds it open while it waits.
  const alive = setInterval(() => undefined, 1_000);
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1));
  clearInterval(alive);
  const never = systemClock.setTimeout(() => t.fail('cancelled timer fired'), 1);
  never.cancel();
});
