// readStoredCache: what `attache status` reads of a cache while no gateway runs. It must say what
// LevelCache would say of the same cache, change nothing a technician would notice (no key file, no
// database, no reserve made), and refuse a cache another process holds.
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CacheKeyring, LevelCache } from '@attache/cache';
import { readKeyring, readStoredCache } from '@attache/cache/stored-view';
import { Level } from 'level';
import t, { type Test } from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

const limits = {
  maxRecords: Number.POSITIVE_INFINITY,
  maxBytes: Number.POSITIVE_INFINITY,
  maxAgeMs: 0,
  whenFull: 'refuse' as const,
};

/** A cache at a fresh path holding `records` drafts, the first `removed` of them removed, and a state value. */
async function filled(t: Test, keyring: CacheKeyring, records: number, removed = 0): Promise<string> {
  const path = join(t.testdir(), 'cache');
  const cache = new LevelCache({ keyring, path });
  await cache.open();
  for (let n = 0; n < records; n++) await cache.append(draft(n));
  if (removed > 0) await cache.remove(1, removed);
  await cache.setState('lastWindow', { outcome: 'done', records: removed });
  await cache.close();
  return path;
}

/** What LevelCache says of the cache at `path` (opening it as the gateway does). */
async function asLevelCache(keyring: CacheKeyring, path: string) {
  const cache = new LevelCache({ keyring, path });
  await cache.open();
  try {
    return {
      backlog: await cache.stats(),
      health: await cache.health(),
      lastWindow: await cache.getState('lastWindow'),
    };
  } finally {
    await cache.close();
  }
}

t.test('a backlog reads as LevelCache reports it: counts, seqs, oldest capture, state', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 30, 12);
  const view = await readStoredCache({ path, keyring, limits, reserveBytes: 0, stateKeys: ['lastWindow'] });
  t.match(view?.backlog, {
    records: 18,
    firstSeq: 13,
    lastSeq: 30,
    nextSeq: 31,
    oldestCapturedAt: draft(12).capturedAt,
  });
  const expected = await asLevelCache(keyring, path);
  t.same(view?.backlog, expected.backlog, 'the same backlog as LevelCache.stats()');
  t.same(view?.health, expected.health, 'the same health as LevelCache.health()');
  t.same(view?.state, { lastWindow: expected.lastWindow }, 'the state values asked for');
});

t.test('an empty cache, and a path where none is yet (nothing is created)', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 3, 3);
  const view = await readStoredCache({ path, keyring, limits, reserveBytes: 0 });
  t.same(view?.backlog, {
    records: 0,
    bytes: 0,
    firstSeq: null,
    lastSeq: null,
    oldestCapturedAt: null,
    nextSeq: 4,
  });
  t.same(view?.state, {}, 'no state asked for, none returned');

  const missing = join(t.testdir(), 'never');
  t.equal(await readStoredCache({ path: missing, keyring, limits, reserveBytes: 0 }), undefined);
  t.notOk(existsSync(missing), 'no directory made where no cache is');
  t.equal(await readKeyring(join(missing, 'cache.key')), undefined, 'no key file: undefined');
  t.notOk(existsSync(missing), 'and none made');
});

t.test('no reserve file is made; full when at a bound or with no room for the reserve', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 5);
  const before = readdirSync(path).filter((f) => !/^(\d+\.(log|ldb)|MANIFEST-\d+|LOG(\.old)?)$/.test(f));
  const roomy = await readStoredCache({ path, keyring, limits, reserveBytes: 4096 });
  t.equal(roomy?.health.full, false, 'room to make a small reserve: not full');
  t.equal(
    (await readStoredCache({ path, keyring, limits: { ...limits, maxRecords: 5 }, reserveBytes: 0 }))?.health
      .full,
    true,
    'maxRecords held: full',
  );
  t.equal(
    (await readStoredCache({ path, keyring, limits, reserveBytes: 2 ** 52 }))?.health.full,
    true,
    'no room on the disk to make the reserve: full, as the gateway would find',
  );
  const after = readdirSync(path).filter((f) => !/^(\d+\.(log|ldb)|MANIFEST-\d+|LOG(\.old)?)$/.test(f));
  t.same(after, before, "nothing but LevelDB's own files changed (no reserve, no key)");
});

t.test('a database without stored counters is counted from its records', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 6, 2);
  const db = new Level<string, Buffer>(path, { valueEncoding: 'buffer' });
  await db.del('!meta!outbox');
  await db.close();
  const view = await readStoredCache({ path, keyring, limits, reserveBytes: 0 });
  t.match(view?.backlog, { records: 4, firstSeq: 3, lastSeq: 6, nextSeq: 7 });
  t.same(view?.backlog, (await asLevelCache(keyring, path)).backlog, 'as LevelCache recounts them');
});

t.test('a first record that fails authentication is skipped and counted as quarantined', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 4);
  const db = new Level<string, Buffer>(path, { valueEncoding: 'buffer' });
  const key = '!outbox!0000000000000001';
  const sealed = (await db.get(key)) as Buffer;
  sealed[sealed.length - 1] = (sealed.at(-1) ?? 0) ^ 0x01;
  await db.put(key, sealed);
  await db.close();
  const view = await readStoredCache({ path, keyring, limits, reserveBytes: 0 });
  t.match(view?.backlog, { records: 3, firstSeq: 2, oldestCapturedAt: draft(1).capturedAt });
  t.equal(view?.health.quarantined, 1);
  t.same(view?.backlog, (await asLevelCache(keyring, path)).backlog, 'as LevelCache says once it moved it');
});

t.test('a state value that fails authentication is not returned, and counts as quarantined', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 2);
  const db = new Level<string, Buffer>(path, { valueEncoding: 'buffer' });
  const key = '!state!lastWindow';
  const sealed = (await db.get(key)) as Buffer;
  sealed[sealed.length - 1] = (sealed.at(-1) ?? 0) ^ 0x01;
  await db.put(key, sealed);
  await db.close();
  const view = await readStoredCache({ path, keyring, limits, reserveBytes: 0, stateKeys: ['lastWindow'] });
  t.same(view?.state, {}, 'the tampered last window is not shown');
  t.equal(view?.health.quarantined, 1);
  t.equal(view?.backlog.records, 2, 'the backlog is unaffected');
});

t.test('a cache another process holds is refused, a corrupt one left to LevelCache', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 2);
  const held = new LevelCache({ keyring, path });
  await held.open();
  await t.rejects(readStoredCache({ path, keyring, limits, reserveBytes: 0 }), {
    code: 'ATTACHE_CACHE_LOCKED',
  });
  await held.close();

  writeFileSync(join(path, 'CURRENT'), 'torn');
  t.equal(
    await readStoredCache({ path, keyring, limits, reserveBytes: 0 }),
    undefined,
    'corrupt: undefined, and not repaired here',
  );
  t.equal(
    (await asLevelCache(keyring, path)).backlog.records,
    2,
    'LevelCache repairs it and keeps the records',
  );
});

t.test('a database that cannot be opened otherwise rejects ATTACHE_CACHE_WRITE', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = await filled(t, keyring, 1);
  // LevelDB's lock file replaced by a directory: opening it fails with EISDIR, even as root.
  rmSync(join(path, 'LOCK'));
  mkdirSync(join(path, 'LOCK'));
  await t.rejects(readStoredCache({ path, keyring, limits, reserveBytes: 0 }), {
    code: 'ATTACHE_CACHE_WRITE',
  });
});
