import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CacheLimits, LevelCache, type LevelCacheOptions } from '@attache/cache';
import type { AttacheRecord, RecordDraft } from '@attache/core';
import t, { type Test } from 'tap';
import { draft, recordingLogger, tempKeyring } from './fixtures/helpers.js';

const base = Date.UTC(2026, 10, 1);

/** `extra` bytes of base64 `raw`, to make a record larger. */
function raw(extra: number): Partial<RecordDraft> {
  return { raw: 'A'.repeat(Math.ceil(extra / 4) * 4) };
}

function limits(extra: Partial<CacheLimits>): CacheLimits {
  return { maxRecords: 1e9, maxBytes: 1e12, maxAgeMs: 0, whenFull: 'refuse', ...extra };
}

/** An open cache in a fresh temporary directory; closed and removed at teardown. */
async function opened(t: Test, options: Partial<LevelCacheOptions> = {}): Promise<LevelCache> {
  const keyring = options.keyring ?? (await tempKeyring(t)).keyring;
  const path = await mkdtemp(join(tmpdir(), 'attache-cache-bounds-'));
  const cache = new LevelCache({ path, ...options, keyring });
  t.teardown(async () => {
    await cache.close();
    await rm(path, { recursive: true, force: true });
  });
  await cache.open();
  return cache;
}

async function storedSeqs(cache: LevelCache): Promise<number[]> {
  return (await cache.read({ afterSeq: 0, limit: 1000, maxBytes: 1e9 })).map((r) => r.seq);
}

async function storedNs(cache: LevelCache): Promise<number[]> {
  const page = await cache.read({ afterSeq: 0, limit: 1000, maxBytes: 1e9 });
  return page.map((r) => (JSON.parse(r.json) as AttacheRecord).clock.monotonicMs);
}

/** The bytes each draft takes once stored with the given seq (as stats().bytes counts them). */
async function sizes(t: Test, drafts: RecordDraft[]): Promise<number[]> {
  const cache = await opened(t);
  const out: number[] = [];
  for (const d of drafts) out.push(Buffer.byteLength(JSON.stringify(await cache.append(d))));
  return out;
}

t.test('refuse at maxRecords: no seq used, room again after remove', async (t) => {
  const cache = await opened(t, { limits: limits({ maxRecords: 3 }) });
  for (let n = 0; n < 3; n++) {
    t.equal(cache.refusing, false, `not refusing with ${n} of 3`);
    t.equal((await cache.append(draft(n))).seq, n + 1);
  }
  t.equal(cache.refusing, true, 'refusing at maxRecords, before anything is refused');
  t.same(
    await cache.health(),
    { dropped: 0, quarantined: 0, full: true, lastCompactionAt: null },
    'full at maxRecords',
  );
  await t.rejects(cache.append(draft(3)), { code: 'ATTACHE_CACHE_FULL' }, 'the 4th is refused');
  t.match(await cache.stats(), { records: 3, nextSeq: 4 }, 'the refused append used no seq');
  t.same(await storedNs(cache), [0, 1, 2], 'nothing of the refused record is stored');
  await cache.remove(1, 1);
  t.equal((await cache.health()).full, false, 'not full once a record is removed');
  t.equal(cache.refusing, false, 'nor refusing');
  t.equal((await cache.append(draft(4))).seq, 4, 'room again, with the next seq');
  t.same(await storedSeqs(cache), [2, 3, 4]);
});

t.test('refuse at maxBytes: exact boundary', async (t) => {
  const drafts = [draft(10), draft(11), draft(12)];
  const [a = 0, b = 0] = await sizes(t, drafts);
  const cache = await opened(t, { limits: limits({ maxBytes: a + b }) });
  t.equal((await cache.append(drafts[0] as RecordDraft)).seq, 1);
  t.equal((await cache.append(drafts[1] as RecordDraft)).seq, 2, 'the record that fits exactly is stored');
  t.equal((await cache.stats()).bytes, a + b, 'stats().bytes is the figure maxBytes bounds');
  await t.rejects(
    cache.append(drafts[2] as RecordDraft),
    { code: 'ATTACHE_CACHE_FULL' },
    'the next is refused',
  );
  t.equal((await cache.stats()).nextSeq, 3, 'no seq consumed');
  t.equal((await cache.health()).full, true);
  await cache.remove(1, 1);
  t.equal((await cache.append(drafts[2] as RecordDraft)).seq, 3, 'room again after remove');
  t.same(await storedNs(cache), [11, 12]);
});

t.test('a record larger than maxBytes alone is refused, even under drop-oldest', async (t) => {
  const [one = 0] = await sizes(t, [draft(1)]);
  const cache = await opened(t, { limits: limits({ maxBytes: one + 10, whenFull: 'drop-oldest' }) });
  await cache.append(draft(1));
  await t.rejects(cache.append(draft(2, raw(20))), { code: 'ATTACHE_CACHE_FULL' });
  t.same(await storedNs(cache), [1], 'nothing was dropped for it');
  t.equal((await cache.health()).dropped, 0);
});

t.test(
  'after a refused record the cache is refusing, below its bounds, until records are removed',
  async (t) => {
    const [one = 0] = await sizes(t, [draft(1)]);
    const cache = await opened(t, { limits: limits({ maxBytes: one * 2 - 1 }) });
    await cache.append(draft(1));
    t.equal(cache.refusing, false, 'below maxBytes');
    await t.rejects(cache.append(draft(2)), { code: 'ATTACHE_CACHE_FULL' });
    t.equal(cache.refusing, true, 'the next would be refused too: say so before it is sent');
    await cache.remove(1, 1);
    t.equal(cache.refusing, false);
    t.equal((await cache.append(draft(3))).seq, 2);
  },
);

t.test('one group around the boundary is decided record by record, in order', async (t) => {
  const [small = 0] = await sizes(t, [draft(1)]);
  const cache = await opened(t, {
    commitIntervalMs: 50,
    limits: limits({ maxRecords: 3, maxBytes: small * 4 + 5 }),
  });
  await cache.append(draft(0));
  const results = await Promise.allSettled([
    cache.append(draft(1)),
    cache.append(draft(2, raw(small))), // does not fit in maxBytes
    cache.append(draft(3)),
    cache.append(draft(4)), // beyond maxRecords
  ]);
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? r.value.seq : (r.reason as { code: string }).code)),
    [2, 'ATTACHE_CACHE_FULL', 3, 'ATTACHE_CACHE_FULL'],
    'fitting appends of the group succeed with consecutive seqs, the others are refused',
  );
  t.same(await storedNs(cache), [0, 1, 3]);
  t.match(await cache.stats(), { records: 3, nextSeq: 4 });
});

t.test('drop-oldest keeps the newest, counts drops durably, seqs keep increasing', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const logger = recordingLogger();
  const bounded = limits({ maxRecords: 5, whenFull: 'drop-oldest' });
  let cache = new LevelCache({ path, keyring, logger, limits: bounded });
  await cache.open();
  const seqs: number[] = [];
  for (let n = 0; n < 8; n++) seqs.push((await cache.append(draft(n))).seq);
  t.same(seqs, [1, 2, 3, 4, 5, 6, 7, 8], 'every append resolved, seqs increasing');
  t.same(await storedNs(cache), [3, 4, 5, 6, 7], 'the newest five are kept');
  t.same(await cache.health(), { dropped: 3, quarantined: 0, full: true, lastCompactionAt: null });
  t.equal(cache.refusing, false, 'drop-oldest never refuses a record that fits');
  const warns = logger.entries.filter((e) => e.level === 'warn' && e.dropped !== undefined);
  t.same(
    warns.map((e) => [e.dropped, e.firstSeq, e.lastSeq]),
    [
      [1, 1, 1],
      [1, 2, 2],
      [1, 3, 3],
    ],
    'each drop is logged at warn with its count and seq range',
  );
  t.notOk(JSON.stringify(logger.entries).includes('MDC_PULS'), 'no record content in the logs');
  await cache.close();

  cache = new LevelCache({ path, keyring, limits: bounded });
  await cache.open();
  t.teardown(() => cache.close());
  t.equal((await cache.health()).dropped, 3, 'the drop count survives reopening');
  t.equal((await cache.append(draft(8))).seq, 9);
  t.same(await storedSeqs(cache), [5, 6, 7, 8, 9]);
  t.match(await cache.stats(), { records: 5, firstSeq: 5, lastSeq: 9, nextSeq: 10 });
  t.equal((await cache.health()).dropped, 4);
});

t.test('drop-oldest at maxBytes, and within one group', async (t) => {
  const [one = 0] = await sizes(t, [draft(1)]);
  const cache = await opened(t, {
    commitIntervalMs: 50,
    limits: limits({ maxBytes: one * 2 + 5, whenFull: 'drop-oldest' }),
  });
  await cache.append(draft(1));
  const group = await Promise.all([2, 3, 4, 5].map((n) => cache.append(draft(n))));
  t.same(
    group.map((r) => r.seq),
    [2, 3, 4, 5],
    'all appends of the group resolve',
  );
  t.same(await storedNs(cache), [4, 5], 'a stored record and earlier ones of the same group make room');
  const stats = await cache.stats();
  t.ok(stats.bytes <= one * 2 + 5, 'bytes stay within maxBytes');
  t.match(stats, { records: 2, nextSeq: 6 });
  t.equal((await cache.health()).dropped, 3);
});

function aged(n: number, ageMs: number, extra: Partial<RecordDraft> = {}): RecordDraft {
  return draft(n, { capturedAt: new Date(base - ageMs).toISOString(), ...extra });
}

t.test('expire drops exactly the records older than maxAgeMs, durably', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const logger = recordingLogger();
  const bounded = limits({ maxAgeMs: 60_000 });
  let cache = new LevelCache({ path, keyring, logger, limits: bounded });
  await cache.open();
  const unsynced = { synchronized: false, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: 0 };
  await cache.append(aged(0, 600_000, { clock: unsynced })); // clock not trusted: kept
  await cache.append(aged(1, 120_000));
  await cache.append(aged(2, 60_001));
  await cache.append(aged(3, 60_000)); // exactly maxAgeMs old: kept
  await cache.append(aged(4, 1_000));
  t.same(await cache.expire(base), { dropped: 2 });
  t.same(await storedNs(cache), [0, 3, 4]);
  t.same(await cache.expire(base), { dropped: 0 }, 'nothing more to do');
  const warn = logger.entries.find((e) => e.level === 'warn' && e.dropped !== undefined);
  t.match(warn, { dropped: 2, firstSeq: 2, lastSeq: 3 }, 'logged at warn with count and seq range');
  await cache.close();

  cache = new LevelCache({ path, keyring, limits: bounded });
  await cache.open();
  t.teardown(() => cache.close());
  t.equal((await cache.health()).dropped, 2, 'the count survives reopening');
  t.match(await cache.stats(), { records: 3, nextSeq: 6 });
  t.same(await cache.expire(base + 60_000), { dropped: 2 }, 'later, the younger ones age out too');
  t.same(await storedNs(cache), [0]);
});

t.test('expire walks past kept records once, and still finds later ones', async (t) => {
  const cache = await opened(t, { limits: limits({ maxAgeMs: 60_000 }) });
  const unsynced = { synchronized: false, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: 0 };
  await cache.append(aged(0, 600_000, { clock: unsynced }));
  await cache.append(aged(1, 1_000));
  t.same(await cache.expire(base), { dropped: 0 }, 'the unsynchronized record is kept, the next is young');
  await cache.append(aged(2, 120_000)); // captured long ago, stored behind a younger record
  t.same(await cache.expire(base), { dropped: 0 }, 'it waits behind the younger record');
  t.same(await cache.expire(base + 60_000), { dropped: 2 }, 'then both go');
  t.same(await storedNs(cache), [0]);
  t.match(await cache.stats(), { records: 1, nextSeq: 4 });
});

t.test('a record restored below where expiry stopped still ages out', async (t) => {
  const cache = await opened(t, { limits: limits({ maxAgeMs: 60_000 }) });
  const old = await cache.append(aged(0, 120_000));
  await cache.append(aged(1, 1_000));
  t.same(await cache.expire(base), { dropped: 1 }, 'the old record goes, expiry stops at the young one');
  await cache.remove(2, 2);
  t.same(await cache.restore([old as AttacheRecord]), { stored: 1, skipped: 0 });
  t.same(await cache.expire(base), { dropped: 1 }, 'the restored record is as old as before: it goes again');
  t.match(await cache.stats(), { records: 0 });
});

t.test('without an age limit expire does nothing; without limits nothing is bounded', async (t) => {
  const cache = await opened(t);
  for (let n = 0; n < 3; n++) await cache.append(aged(n, 1e12));
  t.same(await cache.expire(), { dropped: 0 });
  t.same(await cache.health(), { dropped: 0, quarantined: 0, full: false, lastCompactionAt: null });
  t.equal((await cache.stats()).records, 3);
});

t.test('bad limits throw a TypeError naming the field', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const bad: [Partial<CacheLimits>, RegExp][] = [
    [{ maxRecords: 0 }, /limits\.maxRecords/],
    [{ maxBytes: Number.NaN }, /limits\.maxBytes/],
    [{ maxAgeMs: -1 }, /limits\.maxAgeMs/],
    [{ whenFull: 'ignore' as CacheLimits['whenFull'] }, /limits\.whenFull/],
  ];
  for (const [extra, message] of bad) {
    t.throws(() => new LevelCache({ path, keyring, limits: limits(extra) }), { name: 'TypeError', message });
  }
  const cache = await opened(t, { limits: limits({ maxAgeMs: 1 }) });
  await t.rejects(cache.expire(Number.NaN), { name: 'TypeError', message: /"now"/ });
});
