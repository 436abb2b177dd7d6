import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelCache } from '@attache/cache';
import t from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

const seqs = async (cache: LevelCache) =>
  (await cache.read({ afterSeq: 0, limit: 10_000, maxBytes: 1e9 })).map((r) => r.seq);

t.test('a re-sent reading with the same idempotency key is stored once, also after a restart', async (t) => {
  const path = t.testdir();
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ path, keyring });
  await cache.open();
  const first = await cache.append(draft(1), { idempotencyKey: 'astm:3f9a…:0' });
  t.equal(first?.seq, 1, 'the first is stored');
  t.equal(await cache.append(draft(1), { idempotencyKey: 'astm:3f9a…:0' }), undefined, 'the re-send is not');
  t.equal((await cache.append(draft(2), { idempotencyKey: 'astm:3f9a…:1' }))?.seq, 2, 'another key is');
  t.equal((await cache.append(draft(3)))?.seq, 3, 'appends without a key are unaffected');
  await cache.close();

  const reopened = new LevelCache({ path, keyring });
  await reopened.open();
  t.teardown(() => reopened.close());
  t.equal(
    await reopened.append(draft(1), { idempotencyKey: 'astm:3f9a…:0' }),
    undefined,
    'known after a restart',
  );
  t.same(await seqs(reopened), [1, 2, 3], 'each reading once, in order');
});

t.test('concurrent appends of one key store it once; a refused one can be retried', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({
    path: t.testdir(),
    keyring,
    limits: { maxRecords: 1, maxBytes: 1e9, maxAgeMs: 0, whenFull: 'refuse' },
  });
  await cache.open();
  t.teardown(() => cache.close());
  const [a, b] = await Promise.all([
    cache.append(draft(1), { idempotencyKey: 'hl7:MSG-1' }),
    cache.append(draft(1), { idempotencyKey: 'hl7:MSG-1' }),
  ]);
  t.equal(a?.seq, 1);
  t.equal(b, undefined, 'the second waited for the first and was recognised');
  await t.rejects(cache.append(draft(2), { idempotencyKey: 'hl7:MSG-2' }), { code: 'ATTACHE_CACHE_FULL' });
  await cache.remove(1, 1);
  t.equal(
    (await cache.append(draft(2), { idempotencyKey: 'hl7:MSG-2' }))?.seq,
    2,
    'a refused key is not remembered',
  );
});

t.test('only the latest 4,096 keys are kept, and the keys are not stored in clear', async (t) => {
  const path = t.testdir();
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ path, keyring, maxBatchRecords: 1000 });
  await cache.open();
  await Promise.all(
    Array.from({ length: 4100 }, (_, i) => cache.append(draft(i), { idempotencyKey: `message-key-${i}` })),
  );
  t.equal(
    await cache.append(draft(0), { idempotencyKey: 'message-key-4099' }),
    undefined,
    'a recent key is known',
  );
  t.equal(
    (await cache.append(draft(0), { idempotencyKey: 'message-key-0' }))?.seq,
    4101,
    'the oldest was forgotten',
  );
  await cache.close();
  for (const file of await readdir(path)) {
    const bytes = await readFile(join(path, file));
    t.notOk(bytes.includes('message-key-'), `${file} holds no key in clear`);
  }
});

t.test('at the limit each new key forgets the oldest, on disk too (known after a restart)', async (t) => {
  const path = t.testdir();
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ path, keyring, maxBatchRecords: 1000 });
  await cache.open();
  // Twice the limit at once (groups of 1,000), then one at a time: 4,106 keys forgotten in all.
  const first = 8192;
  await Promise.all(
    Array.from({ length: first }, (_, i) => cache.append(draft(i), { idempotencyKey: `message-key-${i}` })),
  );
  for (let i = first; i < first + 10; i++)
    await cache.append(draft(i), { idempotencyKey: `message-key-${i}` });
  t.equal(await cache.append(draft(0), { idempotencyKey: 'message-key-4106' }), undefined, 'the oldest kept');
  t.equal(
    (await cache.append(draft(0), { idempotencyKey: 'message-key-4105' }))?.seq,
    first + 11,
    'the one before it forgotten',
  );
  await cache.close();

  const reopened = new LevelCache({ path, keyring });
  await reopened.open();
  t.teardown(() => reopened.close());
  t.equal(await reopened.append(draft(0), { idempotencyKey: 'message-key-4105' }), undefined, 'known again');
  t.equal(await reopened.append(draft(0), { idempotencyKey: 'message-key-8201' }), undefined, 'newest kept');
  t.equal(
    (await reopened.append(draft(0), { idempotencyKey: 'message-key-4106' }))?.seq,
    first + 12,
    'storing the one before made the oldest go, on disk as well: 4,096 kept',
  );
  t.equal(
    (await reopened.append(draft(0), { idempotencyKey: 'message-key-4107' }))?.seq,
    first + 13,
    'and so on, one for one',
  );
});
