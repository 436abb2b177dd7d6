import { join } from 'node:path';
import { LevelCache } from '@attache/cache';
import t from 'tap';
import { draft, recordingLogger, tempKeyring } from './fixtures/helpers.js';

const tokenFormat = /^pt_[a-z2-7]{26}$/;

t.test('a patient keeps one random token across reopen; others get their own', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  let cache = new LevelCache({ keyring, path });
  await cache.open();
  const ids = ['MRN-0042', 'MRN-0043', 'pt_aaaa', 'a'.repeat(40)];
  const tokens = await Promise.all(ids.map((id) => cache.token(id)));
  for (const [i, token] of tokens.entries()) {
    t.match(token, tokenFormat);
    t.notOk(token.includes(ids[i] ?? ''), 'the id does not appear in its token');
  }
  t.equal(new Set(tokens).size, ids.length, 'different ids, different tokens');
  t.equal(await cache.token('MRN-0042'), tokens[0], 'same id, same token');
  await cache.close();

  cache = new LevelCache({ keyring, path });
  await cache.open();
  t.teardown(() => cache.close());
  t.same(await Promise.all(ids.map((id) => cache.token(id))), tokens, 'the same after reopening');
});

t.test('the token is not derived from the id', async (t) => {
  const { keyring } = await tempKeyring(t);
  const dir = t.testdir({ one: {}, two: {} });
  const one = new LevelCache({ keyring, path: join(dir, 'one') });
  const two = new LevelCache({ keyring, path: join(dir, 'two') });
  await one.open();
  await two.open();
  t.teardown(async () => {
    await one.close();
    await two.close();
  });
  t.not(await one.token('MRN-0042'), await two.token('MRN-0042'), 'another gateway, another token');
});

t.test('concurrent calls for a new id yield one token', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ keyring, path: t.testdir() });
  await cache.open();
  t.teardown(() => cache.close());
  const tokens = await Promise.all(Array.from({ length: 20 }, () => cache.token('MRN-7')));
  t.equal(new Set(tokens).size, 1);
  t.equal(await cache.token('MRN-7'), tokens[0]);
});

t.test('a token call on a closed cache rejects, for a patient seen before as for a new one', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ keyring, path: t.testdir() });
  await cache.open();
  const token = await cache.token('MRN-9');
  t.equal(await cache.token('MRN-9'), token, 'seen before: the token in memory');
  await cache.close();
  for (const id of ['MRN-9', 'MRN-10']) {
    const call = cache.token(id); // a promise that rejects, never a throw
    await t.rejects(call, { code: 'ATTACHE_CACHE_CLOSED' }, id);
  }
});

t.test('the patient id stays in the token table: not in records, not in logs', async (t) => {
  const { keyring } = await tempKeyring(t);
  const logger = recordingLogger();
  const cache = new LevelCache({ keyring, path: t.testdir(), logger });
  await cache.open();
  t.teardown(() => cache.close());
  const id = 'MRN-0042';
  const token = await cache.token(id);
  await cache.append(draft(0, { patient: { token } }));
  await cache.append(draft(1));
  const stored = await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 });
  t.equal(stored.length, 2);
  t.same(JSON.parse(stored[0]?.json ?? '').patient, { token });
  for (const record of stored) t.notOk(record.json.includes(id), `seq ${record.seq} holds no id`);
  await cache.close();
  t.ok(logger.entries.length > 0);
  t.notOk(JSON.stringify(logger.entries).includes(id), 'no log entry holds the id');
});
