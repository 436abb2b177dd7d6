import { ManualClock } from '@attache/core';
import t from 'tap';
import { LoginLimiter, SessionStore } from '../src/index.js';

const digest = Buffer.alloc(32, 1);

t.test('a session lasts its lifetime, then is gone', async (t) => {
  const clock = new ManualClock({ now: 1_000_000 });
  const store = new SessionStore({ clock, lifetimeMs: 60_000 });
  const token = store.create('Dana (biomed)', digest);
  t.equal(store.get(token, digest)?.who, 'Dana (biomed)');
  t.equal(store.maxAgeSeconds, 60);
  await clock.advance(59_999);
  t.ok(store.get(token, digest), 'still logged in just before the end');
  await clock.advance(1);
  t.equal(store.get(token, digest), undefined, 'expired');
  t.equal(store.get(undefined, digest), undefined, 'no cookie, no session');
});

t.test('a rotated secret ends the session; logout ends it; the 17th login ends the oldest', async (t) => {
  const clock = new ManualClock();
  const store = new SessionStore({ clock, lifetimeMs: 60_000 });
  const token = store.create('a', digest);
  t.equal(store.get(token, Buffer.alloc(32, 2)), undefined, 'made with another secret');
  t.equal(store.get(token, digest), undefined, 'and removed');
  const other = store.create('b', digest);
  store.delete(other);
  store.delete(undefined);
  t.equal(store.get(other, digest), undefined);
  const tokens = Array.from({ length: 17 }, (_, i) => store.create(`t${i}`, digest));
  t.equal(store.get(tokens[0], digest), undefined, 'the oldest made room');
  t.ok(store.get(tokens[16], digest));
});

t.test('five failed logins, then the wait doubles up to 15 min; success resets', async (t) => {
  const clock = new ManualClock();
  const limiter = new LoginLimiter(clock);
  for (let i = 0; i < 4; i++) limiter.failed();
  t.equal(limiter.waitMs(), 0, 'four failures cost nothing');
  limiter.failed();
  t.equal(limiter.waitMs(), 30_000);
  await clock.advance(30_000);
  t.equal(limiter.waitMs(), 0);
  limiter.failed();
  t.equal(limiter.waitMs(), 60_000, 'doubled');
  for (let i = 0; i < 10; i++) limiter.failed();
  t.equal(limiter.waitMs(), 15 * 60_000, 'capped');
  limiter.succeeded();
  t.equal(limiter.waitMs(), 0);
});
