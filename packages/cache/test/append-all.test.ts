import { LevelCache } from '@attache/cache';
import { ManualClock } from '@attache/core';
import t from 'tap';
import { CommitQueue } from '../src/commit-queue.js';
import { draft, tempKeyring } from './fixtures/helpers.js';

const seqs = async (cache: LevelCache) =>
  (await cache.read({ afterSeq: 0, limit: 10_000, maxBytes: 1e9 })).map((r) => r.seq);

t.test(
  'appendAll stores the readings of one message together, and a re-sent message not again',
  async (t) => {
    const path = t.testdir();
    const { keyring } = await tempKeyring(t);
    const cache = new LevelCache({ path, keyring });
    await cache.open();
    const keys = ['hl7:abc:1', 'hl7:abc:2', 'hl7:abc:3'];
    const records = await cache.appendAll([draft(1), draft(2), draft(3)], { idempotencyKeys: keys });
    t.same(
      records.map((r) => r?.seq),
      [1, 2, 3],
      'one seq each, in order',
    );
    t.same(
      await cache.appendAll([draft(1), draft(2), draft(3)], { idempotencyKeys: keys }),
      [undefined, undefined, undefined],
      'the re-sent message stores nothing',
    );
    t.same(
      (await cache.appendAll([draft(4)])).map((r) => r?.seq),
      [4],
      'without keys',
    );
    await cache.close();
    const reopened = new LevelCache({ path, keyring });
    await reopened.open();
    t.teardown(() => reopened.close());
    const again = await reopened.appendAll([draft(1), draft(2), draft(5)], {
      idempotencyKeys: [...keys.slice(0, 2), 'hl7:abc:9'],
    });
    t.same(
      again.map((r) => r?.seq),
      [undefined, undefined, 5],
      'known after a restart; only the new key is stored',
    );
    t.same(await seqs(reopened), [1, 2, 3, 4, 5]);
  },
);

t.test('appendAll is all or nothing at a bound; appends alongside it are unaffected', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({
    path: t.testdir(),
    keyring,
    limits: { maxRecords: 3, maxBytes: 1e9, maxAgeMs: 0, whenFull: 'refuse' },
  });
  await cache.open();
  t.teardown(() => cache.close());
  await cache.append(draft(1));
  const [all, alone] = await Promise.allSettled([
    cache.appendAll([draft(2), draft(3), draft(4)], { idempotencyKeys: ['m:1', 'm:2', 'm:3'] }),
    cache.append(draft(5)),
  ]);
  t.match(all, { status: 'rejected', reason: { code: 'ATTACHE_CACHE_FULL' } }, 'two fit, the third not');
  t.match(alone, { status: 'fulfilled', value: { seq: 2 } }, 'the append queued with it is stored');
  t.same(await seqs(cache), [1, 2], 'none of the message');
  await cache.remove(1, 2);
  t.same(
    (await cache.appendAll([draft(2), draft(3), draft(4)], { idempotencyKeys: ['m:1', 'm:2', 'm:3'] })).map(
      (r) => r?.seq,
    ),
    [3, 4, 5],
    'the refused keys were not remembered: the re-sent message is stored whole',
  );
});

t.test('appendAll refuses a malformed draft before queueing anything', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ path: t.testdir(), keyring });
  await cache.open();
  t.teardown(() => cache.close());
  await t.rejects(cache.appendAll([draft(1), draft(2, { capturedAt: 'yesterday' })]), {
    code: 'ATTACHE_MALFORMED',
  });
  t.same(await seqs(cache), [], 'nothing stored');
  await cache.close();
  await t.rejects(cache.appendAll([draft(1)]), { code: 'ATTACHE_CACHE_CLOSED' });
});

t.test('pushAll keeps its items in one group, even beyond maxItems', async (t) => {
  const groups: number[][] = [];
  const queue = new CommitQueue<number>({
    intervalMs: 0,
    maxItems: 2,
    commit: async (items) => {
      groups.push(items);
      return items.map((i) => (i === 13 ? new Error('no 13') : undefined));
    },
  });
  const first = queue.push(1);
  const unit = queue.pushAll([2, 3, 4]);
  const last = queue.push(5);
  await Promise.all([first, unit, last]);
  t.same(groups, [[1, 2, 3, 4], [5]], 'the group ends after the last item of the pushAll');
  await t.rejects(queue.pushAll([12, 13]), { message: 'no 13' }, 'rejects with the failed item');
  await queue.pushAll([]);
  t.equal(groups.length, 3, 'an empty pushAll commits nothing');
});

t.test('pushAll on an idle queue: at once when it fills a group, else after the interval', async (t) => {
  const groups: number[][] = [];
  const clock = new ManualClock();
  const queue = new CommitQueue<number>({
    intervalMs: 5,
    maxItems: 2,
    clock,
    commit: async (items) => {
      groups.push(items);
      return items.map(() => undefined);
    },
  });
  await queue.pushAll([1, 2, 3]);
  t.same(groups, [[1, 2, 3]], 'a full group is written at once');
  await queue.flush();
  const one = queue.pushAll([4]);
  t.equal(clock.pending, 1, 'a smaller one waits for the interval');
  await clock.advance(5);
  await one;
  t.same(groups, [[1, 2, 3], [4]]);
});

t.test('appendAll: concurrent re-sends of one message store it once; two refused in one unit', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({
    path: t.testdir(),
    keyring,
    limits: { maxRecords: 4, maxBytes: 1e9, maxAgeMs: 0, whenFull: 'refuse' },
  });
  await cache.open();
  t.teardown(() => cache.close());
  const keys = ['k:1', 'k:2'];
  const [a, b] = await Promise.all([
    cache.appendAll([draft(1), draft(2)], { idempotencyKeys: keys }),
    cache.appendAll([draft(1), draft(2)], { idempotencyKeys: keys }),
  ]);
  t.same(
    [a.map((r) => r?.seq), b],
    [
      [1, 2],
      [undefined, undefined],
    ],
    'the second waited for the first and was recognised',
  );
  await t.rejects(cache.appendAll([draft(3), draft(4), draft(5), draft(6)]), { code: 'ATTACHE_CACHE_FULL' });
  t.same(await seqs(cache), [1, 2], 'two would fit, two not: none stored');
});
