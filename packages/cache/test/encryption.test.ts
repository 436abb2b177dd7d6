import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CacheKeyring, LevelCache, loadOrCreateKeyring, rotateKeyring } from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import { Level } from 'level';
import t, { type Test } from 'tap';
import { draft, recordingLogger, tempKeyring } from './fixtures/helpers.js';

const patientId = 'MRN-SECRET-0042';
const deviceId = 'bedside-XYZZY-7';
const stateNote = 'ward-QUUX-9';
const all = { afterSeq: 0, limit: 1000, maxBytes: 1e9 };
const seqKey = (seq: number): string => String(seq).padStart(16, '0');

/** Every file under `dir`, as bytes. */
async function filesOf(dir: string): Promise<Buffer[]> {
  const names = await readdir(dir, { recursive: true, withFileTypes: true });
  return Promise.all(names.filter((e) => e.isFile()).map((e) => readFile(join(e.parentPath, e.name))));
}

/** The strings of `needles` found in any file under `dir`. */
async function foundIn(dir: string, needles: string[]): Promise<string[]> {
  const files = await filesOf(dir);
  return needles.filter((n) => files.some((f) => f.includes(Buffer.from(n, 'utf8'))));
}

/** Opens a cache on `path`, closed at teardown. */
async function opened(t: Test, path: string, keyring: CacheKeyring, logger = recordingLogger()) {
  const cache = new LevelCache({ path, keyring, logger, commitIntervalMs: 0 });
  await cache.open();
  t.teardown(() => cache.close());
  return { cache, logger };
}

/** Fills a cache with distinctive records (one with a patient token) and a state value; closes it. */
async function fill(t: Test, path: string, keyring: CacheKeyring) {
  const { cache } = await opened(t, path, keyring);
  const token = await cache.token(patientId);
  const records: AttacheRecord[] = [];
  for (let n = 0; n < 6; n++) {
    const observations = [
      { code: 'MDC_TEMP', system: 'MDC' as const, value: 123.456 + n, unit: 'Cel', status: 'valid' as const },
    ];
    const extra = n === 0 ? { patient: { token } } : {};
    records.push(await cache.append(draft(n, { deviceId, observations, ...extra })));
  }
  await cache.setState('lastWindow', { note: stateNote });
  await cache.close();
  return { token, records };
}

/** Runs `fn` on the raw outbox sublevel of the closed database at `path`. */
async function rawOutbox<T>(
  path: string,
  fn: (outbox: ReturnType<typeof sublevel>) => Promise<T>,
): Promise<T> {
  const db = new Level(path);
  try {
    return await fn(sublevel(db, 'outbox'));
  } finally {
    await db.close();
  }
}

function sublevel(db: Level, name: string) {
  return db.sublevel<string, Buffer>(name, { valueEncoding: 'buffer' });
}

t.test('no patient id, token, device id, value or state is readable in the database files', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = join(t.testdir({ plain: {} }), 'cache');
  const { token } = await fill(t, path, keyring);
  const secrets = [patientId, token, deviceId, '123.456', stateNote, 'MDC_TEMP', 'capturedAt'];
  t.same(await foundIn(path, secrets), [], 'none of them appears in any file');
  t.same(
    await foundIn(path, ['!meta!outbox', 'nextSeq']),
    ['!meta!outbox', 'nextSeq'],
    'the clear counters do',
  );

  // The same scan finds those strings in a database holding them in clear.
  const plainPath = join(t.testdirName, 'plain');
  const plain = new Level(plainPath);
  await plain.put(patientId, JSON.stringify({ token, deviceId, value: 123.456, stateNote }), { sync: true });
  await plain.close();
  t.same(await foundIn(plainPath, secrets.slice(0, 5)), secrets.slice(0, 5), 'the scan finds clear text');
});

t.test('with the same keyring everything reads back; with another, records are quarantined', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const { token, records } = await fill(t, path, keyring);

  let { cache } = await opened(t, path, keyring);
  const read = await cache.read(all);
  t.same(
    read.map((r) => r.json),
    records.map((r) => JSON.stringify(r)),
    'identical JSON',
  );
  t.same(await cache.getState('lastWindow'), { note: stateNote });
  t.equal(await cache.token(patientId), token, 'same token after reopening');
  t.equal(await cache.quarantineCount(), 0);
  const stats = await cache.stats();
  await cache.close();

  const { keyring: other } = await tempKeyring(t);
  const logger = recordingLogger();
  ({ cache } = await opened(t, path, other, logger));
  t.match(
    await cache.stats(),
    { records: 0, bytes: 0, firstSeq: null, oldestCapturedAt: null, nextSeq: 7 },
    'stats skips (and quarantines) records it cannot open',
  );
  t.equal(await cache.quarantineCount(), 6, 'every record is quarantined');
  t.same(await cache.read(all), [], 'no record is returned');
  t.equal(await cache.getState('lastWindow'), undefined, 'the state value reads as missing');
  t.equal(await cache.quarantineCount(), 7, 'and is quarantined too');
  t.not(await cache.token(patientId), token, 'another keyring cannot find the token');
  const errors = logger.entries.filter((e) => e.level === 'error');
  t.same(
    errors.filter((e) => e.sublevel === 'outbox').map((e) => e.seq),
    [1, 2, 3, 4, 5, 6],
    'each quarantined record is logged at error with its seq',
  );
  t.ok(errors.every((e) => (e.err as { code?: string }).code === 'ATTACHE_CACHE_TAMPERED'));
  const logged = JSON.stringify(logger.entries);
  for (const s of [deviceId, '123.456', stateNote, token, patientId])
    t.notOk(logged.includes(s), `no ${s} in logs`);
  t.equal((await cache.append(draft(9))).seq, 7, 'the cache keeps working');
  await cache.close();

  ({ cache } = await opened(t, path, keyring));
  t.same(
    (await cache.read(all)).map((r) => r.seq),
    [],
    'quarantined records stay out of the outbox, also with the right key again',
  );
  t.equal(await cache.quarantineCount(), 8, "seq 7, sealed by the other keyring's k1, is quarantined now");
  t.ok(
    stats.records === 6 && stats.oldestCapturedAt === records[0]?.capturedAt,
    'stats read the first record',
  );
});

t.test('a flipped byte or a value moved to another key is quarantined; the others still read', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const { records } = await fill(t, path, keyring);
  const quarantined = await rawOutbox(path, async (outbox) => {
    const two = (await outbox.get(seqKey(2))) as Buffer;
    const flipped = Buffer.from(two);
    flipped[flipped.length - 1] = (flipped.at(-1) ?? 0) ^ 0x01;
    await outbox.put(seqKey(2), flipped);
    const four = (await outbox.get(seqKey(4))) as Buffer;
    await outbox.put(seqKey(5), four);
    return [flipped, four];
  });

  const logger = recordingLogger();
  const { cache } = await opened(t, path, keyring, logger);
  t.same(
    (await cache.read({ afterSeq: 0, limit: 3, maxBytes: 1e9 })).map((r) => r.seq),
    [1, 3, 4],
    'read skips the bad records and still fills its limit',
  );
  t.same(
    (await cache.read(all)).map((r) => r.json),
    [1, 3, 4, 6].map((seq) => JSON.stringify(records[seq - 1])),
    'the others read back intact',
  );
  t.equal(await cache.quarantineCount(), 2);
  const kept = [1, 3, 4, 6].map((seq) => Buffer.byteLength(JSON.stringify(records[seq - 1])));
  t.match(await cache.stats(), { records: 4, bytes: kept.reduce((a, b) => a + b), firstSeq: 1, lastSeq: 6 });
  t.same(
    logger.entries.filter((e) => e.level === 'error').map((e) => [e.seq, e.keyId]),
    [
      [2, 'k1'],
      [5, 'k1'],
    ],
  );
  await cache.close();

  const db = new Level(path);
  const found = await sublevel(db, 'quarantine').iterator().all();
  await db.close();
  t.same(
    found.map(([key]) => key.replace(/!\d{4}-.*$/, '')),
    [`outbox!${seqKey(2)}`, `outbox!${seqKey(5)}`],
  );
  t.same(
    found.map(([, value]) => value),
    quarantined,
    'quarantine keeps the values as found',
  );
});

t.test('a page read past bad records still fills up to maxBytes, in seq order', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const { records } = await fill(t, path, keyring);
  await rawOutbox(path, async (outbox) => {
    const two = (await outbox.get(seqKey(2))) as Buffer;
    await outbox.put(seqKey(2), Buffer.concat([two.subarray(0, -1), Buffer.from([(two.at(-1) ?? 0) ^ 1])]));
    await outbox.put(seqKey(5), (await outbox.get(seqKey(4))) as Buffer);
  });
  const { cache } = await opened(t, path, keyring);
  // Room for four records: what LevelDB was asked for first (five, two of them bad) leaves room,
  // so the page reads on.
  const json = [1, 3, 4, 6].map((seq) => JSON.stringify(records[seq - 1])).join(',');
  const page = await cache.readPage({ afterSeq: 0, limit: 10, maxBytes: Buffer.byteLength(json) });
  t.match(page, { firstSeq: 1, lastSeq: 6, count: 4 });
  t.equal(Buffer.from(page?.json ?? []).toString('utf8'), json, 'the good records, whole and in order');
  t.equal(await cache.quarantineCount(), 2);
});

t.test('a tampered state value or token entry is quarantined, never returned', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const { token } = await fill(t, path, keyring);
  const db = new Level(path);
  for (const name of ['state', 'tokens']) {
    const level = sublevel(db, name);
    const [[key, value] = ['', Buffer.alloc(0)]] = await level.iterator({ limit: 1 }).all();
    t.equal(key.includes(patientId), false, `${name} key holds no patient id`);
    value[20] = (value[20] ?? 0) ^ 0xff;
    await level.put(key, value);
  }
  await db.close();

  const { cache, logger } = await opened(t, path, keyring);
  t.equal(await cache.getState('lastWindow'), undefined);
  const fresh = await cache.token(patientId);
  t.not(fresh, token, 'a tampered token entry gives a new token');
  t.equal(await cache.token(patientId), fresh, 'which then stays');
  t.equal(await cache.quarantineCount(), 2);
  t.same(
    logger.entries.filter((e) => e.level === 'error').map((e) => e.sublevel),
    ['state', 'tokens'],
  );
  t.equal((await cache.read(all)).length, 6, 'records are untouched');
});

t.test('after rotation old and new records read back; new ones carry the new key id', async (t) => {
  const { keyPath } = await tempKeyring(t);
  const path = t.testdir();
  const { token, records } = await fill(t, path, await loadOrCreateKeyring(keyPath));
  t.equal(await rotateKeyring(keyPath), 'k2');

  const keyring = await loadOrCreateKeyring(keyPath);
  let { cache } = await opened(t, path, keyring);
  t.equal(await cache.token(patientId), token, 'the token is stable across rotation');
  for (let n = 6; n < 9; n++) records.push(await cache.append(draft(n)));
  t.equal(await cache.token('MRN-NEW'), await cache.token('MRN-NEW'));
  t.same(await cache.getState('lastWindow'), { note: stateNote }, 'old state reads back');
  await cache.close();

  const ids = await rawOutbox(path, async (outbox) =>
    (await outbox.values().all()).map((v) => v.subarray(2, 2 + (v[1] ?? 0)).toString('ascii')),
  );
  t.same(ids, ['k1', 'k1', 'k1', 'k1', 'k1', 'k1', 'k2', 'k2', 'k2']);

  ({ cache } = await opened(t, path, keyring));
  t.same(
    (await cache.read(all)).map((r) => r.json),
    records.map((r) => JSON.stringify(r)),
    'all nine records read back',
  );
  t.equal(await cache.quarantineCount(), 0);
});

t.test(
  'state values under long and non-ASCII keys read back after a reopen, bound to their key',
  async (t) => {
    const { keyring } = await tempKeyring(t);
    const path = t.testdir();
    // 60 and 300 characters of 'é' (2 bytes each in UTF-8): the second is longer than the AAD buffer.
    const keys = ['é'.repeat(60), 'é'.repeat(300), `${'k'.repeat(700)}-ascii`];
    let { cache } = await opened(t, path, keyring);
    for (const [i, key] of keys.entries()) await cache.setState(key, { i });
    await cache.close();

    ({ cache } = await opened(t, path, keyring));
    t.same(
      await Promise.all(keys.map((key) => cache.getState(key))),
      [{ i: 0 }, { i: 1 }, { i: 2 }],
      'every value reads back under its own key',
    );
    t.equal(await cache.quarantineCount(), 0, 'none failed authentication');
    await cache.close();

    const db = new Level(path);
    const state = sublevel(db, 'state');
    await state.put(keys[0] as string, (await state.get(keys[1] as string)) as Buffer);
    await db.close();
    ({ cache } = await opened(t, path, keyring));
    t.equal(
      await cache.getState(keys[0] as string),
      undefined,
      'a value moved to another long key is refused',
    );
    t.equal(await cache.quarantineCount(), 1);
  },
);
