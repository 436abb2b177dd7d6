import { Backoff, spread } from '@attache/core';
import t from 'tap';

/** A random source that returns `values` in turn, then repeats the last. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] as number;
};

t.test('doubles up to the bound and starts over after reset', async (t) => {
  const backoff = new Backoff({ initialMs: 1000, maxMs: 5000 });
  t.same(
    [1, 2, 3, 4, 5].map(() => backoff.next()),
    [1000, 2000, 4000, 5000, 5000],
    'no jitter by default',
  );
  backoff.reset();
  t.equal(backoff.next(), 1000);
});

t.test('jitter shortens each delay by a random part, never past the bound', async (t) => {
  const backoff = new Backoff({
    initialMs: 1000,
    maxMs: 4000,
    jitter: 0.2,
    random: sequence(0, 0.5, 0.75, 0.25),
  });
  t.same(
    [1, 2, 3, 4].map(() => backoff.next()),
    [1000, 1800, 3400, 3800],
    '1000 − 0 %, 2000 − 10 %, 4000 − 15 %, 4000 − 5 %',
  );
  // Two boxes that failed at the same moment retry apart.
  const a = new Backoff({ initialMs: 10_000, maxMs: 30_000, jitter: 0.2, random: sequence(0.1) });
  const b = new Backoff({ initialMs: 10_000, maxMs: 30_000, jitter: 0.2, random: sequence(0.9) });
  t.not(a.next(), b.next());
});

t.test('spread: 0 changes nothing, 1 can go down to 0; bad options are TypeErrors', async (t) => {
  t.equal(
    spread(1000, 0, () => 0.9),
    1000,
  );
  t.equal(
    spread(1000, 1, () => 0.5),
    500,
  );
  t.equal(
    spread(1000, 3, () => 0.5),
    500,
    'more than 1 counts as 1',
  );
  t.ok(spread(1000, 0.2) >= 800 && spread(1000, 0.2) <= 1000, 'Math.random by default');
  t.throws(() => new Backoff({ initialMs: 0, maxMs: 10 }), TypeError);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), TypeError);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 50, jitter: 1.5 }), { message: /"jitter"/ });
});
