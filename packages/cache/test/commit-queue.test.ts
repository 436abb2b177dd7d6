import { ManualClock } from '@attache/core';
import t from 'tap';
import { CommitQueue } from '../src/commit-queue.js';

/** A queue whose writes stay open until released, recording each group and what overlapped. */
function gatedQueue(intervalMs: number, maxItems = 100) {
  const clock = new ManualClock();
  const groups: number[][] = [];
  const gates: (() => void)[] = [];
  let inFlight = 0;
  let overlapped = false;
  const queue = new CommitQueue<number>({
    intervalMs,
    maxItems,
    clock,
    commit: async (items) => {
      inFlight += 1;
      overlapped ||= inFlight > 1;
      groups.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight -= 1;
      return items.map(() => undefined);
    },
  });
  const releaseNext = async () => {
    gates.shift()?.();
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  return { clock, groups, releaseNext, queue, overlapped: () => overlapped };
}

/** Settles when `promise` does; `done()` says whether it has. */
function watched(promise: Promise<void>) {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  return () => settled;
}

t.test('the first item on an idle queue is written at once, with no timer', async (t) => {
  const { clock, groups, releaseNext, queue } = gatedQueue(0);
  const done = watched(queue.push(1));
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(groups, [[1]], 'its write started without any time passing');
  t.equal(clock.pending, 0, 'no timer was set');
  t.notOk(done(), 'it is not resolved before its write completes');
  await releaseNext();
  t.ok(done(), 'resolved once its write completed');
});

t.test('items pushed in the same turn share the first write', async (t) => {
  const { groups, releaseNext, queue } = gatedQueue(0);
  const pushes = [queue.push(1), queue.push(2), queue.push(3)];
  await new Promise<void>((resolve) => setImmediate(resolve));
  await releaseNext();
  await Promise.all(pushes);
  t.same(groups, [[1, 2, 3]]);
});

t.test('items arriving during a write form the next group, in order, one write at a time', async (t) => {
  const { groups, releaseNext, queue, overlapped } = gatedQueue(0, 3);
  const first = watched(queue.push(1));
  await new Promise<void>((resolve) => setImmediate(resolve));
  const later = [2, 3, 4, 5].map((n) => watched(queue.push(n)));
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(groups, [[1]], 'nothing else is written while the first write is in flight');
  t.notOk(
    later.some((done) => done()),
    'later items wait for a write of their own',
  );
  await releaseNext();
  t.ok(first());
  t.same(groups, [[1], [2, 3, 4]], 'the waiting items are written together at once, up to maxItems');
  t.notOk(later.some((done) => done()));
  await releaseNext();
  t.same(
    later.map((done) => done()),
    [true, true, true, false],
  );
  t.same(groups, [[1], [2, 3, 4], [5]]);
  await releaseNext();
  t.ok(later[3]?.());
  t.notOk(overlapped(), 'no two writes overlapped');
});

t.test('with an interval, the first item waits for it (and for others)', async (t) => {
  const { clock, groups, releaseNext, queue } = gatedQueue(5);
  const first = watched(queue.push(1));
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(groups, [], 'not written before the interval');
  const second = watched(queue.push(2));
  await clock.advance(5);
  t.same(groups, [[1, 2]]);
  await releaseNext();
  t.ok(first() && second());
});

t.test('a full group is written at once, even with an interval', async (t) => {
  const { groups, releaseNext, queue } = gatedQueue(1000, 2);
  const pushes = [queue.push(1), queue.push(2)];
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(groups, [[1, 2]]);
  await releaseNext();
  await Promise.all(pushes);
});

t.test('flush writes what waits for the interval and resolves once it is written', async (t) => {
  const { groups, releaseNext, queue } = gatedQueue(1000);
  const push = watched(queue.push(1));
  const flushed = watched(queue.flush());
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(groups, [[1]]);
  t.notOk(flushed());
  await releaseNext();
  t.ok(push() && flushed());
});

t.test('a failed write rejects its own group only; an item with its own error rejects alone', async (t) => {
  let calls = 0;
  const queue = new CommitQueue<number>({
    intervalMs: 0,
    maxItems: 10,
    commit: async (items) => {
      calls += 1;
      if (calls === 1) throw new Error('disk');
      return items.map((n) => (n === 3 ? new Error('refused') : undefined));
    },
  });
  const first = queue.push(1);
  await t.rejects(first, { message: 'disk' });
  const results = await Promise.allSettled([queue.push(2), queue.push(3)]);
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected'],
  );
});
