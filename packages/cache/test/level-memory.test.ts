import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultWriteBufferBytes, LevelCache, type LevelCacheOptions } from '@attache/cache';
import t, { type Test } from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

/** Records written by each case below: 7 groups of 1,000. */
const records = 7000;

/** Appends `count` records in groups of 1,000 (one synced write each). */
async function appendMany(cache: LevelCache, count: number): Promise<void> {
  for (let n = 0; n < count; n += 1000) {
    const group = Array.from({ length: Math.min(1000, count - n) }, (_, i) => cache.append(draft(n + i)));
    await Promise.all(group);
  }
}

/** LevelDB's table files in `path`: each one a write buffer that filled up and was written out. */
const tables = async (path: string) => (await readdir(path)).filter((name) => name.endsWith('.ldb')).length;

/**
 * Bytes in LevelDB's current log (the highest-numbered): the writes its memtable holds. A full
 * memtable is written out as a table and a new log started; the previous log stays until that
 * table is written, which a close may leave to the next open.
 */
async function currentLogBytes(path: string): Promise<number> {
  const logs = (await readdir(path)).filter((name) => name.endsWith('.log')).sort();
  const current = logs.at(-1);
  return current === undefined ? 0 : (await stat(join(path, current))).size;
}

/** 7,000 records (~2.8 MB in LevelDB's log) written to a fresh cache with `options`: its tables and log after close. */
async function afterWriting(t: Test, options: Partial<LevelCacheOptions>) {
  const { keyring } = await tempKeyring(t);
  const path = join(t.testdir(), 'cache');
  const cache = new LevelCache({ path, keyring, ...options });
  await cache.open();
  await appendMany(cache, records);
  t.equal((await cache.stats()).records, records);
  // LevelDB's close waits for a memtable being written out; the one still filling stays in its log.
  await cache.close();
  return { tables: await tables(path), log: await currentLogBytes(path) };
}

t.test(
  'the write buffer bounds what LevelDB holds in memory: once full it is written out as a table',
  async (t) => {
    t.equal(defaultWriteBufferBytes, 4 << 20, 'the default is LevelDB’s 4 MiB');
    const levelDbDefault = await afterWriting(t, {});
    t.equal(levelDbDefault.tables, 0, 'with the default 4 MiB everything is still in its memtable');
    t.ok(levelDbDefault.log > 1 << 20, `its log holds every record (${levelDbDefault.log} bytes)`);
    const byDefault = await afterWriting(t, { writeBufferBytes: 1 << 20 });
    t.ok(byDefault.tables >= 1, 'with 1 MiB a full memtable was written out as a table');
    // LevelDB makes room before a write: a memtable holds at most the buffer and the group that filled it.
    const group = levelDbDefault.log / (records / 1000);
    t.ok(
      byDefault.log <= (1 << 20) + group,
      `with 1 MiB the memtable holds at most 1 MiB and one group of 1,000 (${byDefault.log} bytes)`,
    );
  },
);

t.test('without a block cache the records read back the same', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = join(t.testdir(), 'cache');
  const cache = new LevelCache({ path, keyring, blockCacheBytes: 0, writeBufferBytes: 64 << 10 });
  await cache.open();
  // Three groups: the third waits until the first group's memtable is written out as a table.
  await appendMany(cache, 3000);
  await cache.close();
  t.ok((await tables(path)) >= 1, 'records were written to tables');
  await cache.open();
  const page = await cache.read({ afterSeq: 0, limit: 4000, maxBytes: 10_000_000 });
  t.equal(page.length, 3000);
  t.same(
    page.map((record) => (JSON.parse(record.json) as { clock: { monotonicMs: number } }).clock.monotonicMs),
    Array.from({ length: 3000 }, (_, i) => i),
  );
  await cache.close();
});

t.test('LevelDB memory options outside what LevelDB takes are TypeErrors naming them', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = 'x';
  for (const writeBufferBytes of [65_535, 2 ** 30 + 1, 1.5, Number.NaN]) {
    t.throws(
      () => new LevelCache({ path, keyring, writeBufferBytes }),
      new TypeError('"writeBufferBytes" must be an integer from 65536 to 2^30'),
    );
  }
  for (const blockCacheBytes of [-1, 2 ** 30 + 1, 0.5]) {
    t.throws(
      () => new LevelCache({ path, keyring, blockCacheBytes }),
      new TypeError('"blockCacheBytes" must be an integer from 0 to 2^30'),
    );
  }
  t.doesNotThrow(() => new LevelCache({ path, keyring, writeBufferBytes: 65_536, blockCacheBytes: 0 }));
});
