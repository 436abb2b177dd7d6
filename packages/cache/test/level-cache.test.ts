import { join } from 'node:path';
import { LevelCache, type LevelCacheOptions } from '@attache/cache';
import { type AttacheRecord, ManualClock, type RecordPage } from '@attache/core';
import t, { type Test } from 'tap';
import { draft, recordingLogger, tempKeyring } from './fixtures/helpers.js';

async function opened(t: Test, path: string, options: Partial<LevelCacheOptions> = {}): Promise<LevelCache> {
  const keyring = options.keyring ?? (await tempKeyring(t)).keyring;
  const cache = new LevelCache({ path, ...options, keyring });
  await cache.open();
  t.teardown(() => cache.close());
  return cache;
}

function byteLength(records: { json: string }[]): number {
  return records.reduce((sum, r) => sum + Buffer.byteLength(r.json), 0);
}

t.test('appends are numbered from 1 in call order and read back in order', async (t) => {
  const cache = await opened(t, t.testdir());
  const appended = await Promise.all(Array.from({ length: 25 }, (_, n) => cache.append(draft(n))));
  t.same(
    appended.map((r) => r.seq),
    Array.from({ length: 25 }, (_, i) => i + 1),
  );
  t.same(
    appended.map((r) => r.clock.monotonicMs),
    Array.from({ length: 25 }, (_, n) => n),
    'seq order is call order',
  );
  t.same(appended[0], { ...draft(0), seq: 1 }, 'the resolved record is the draft plus its seq');

  const first = await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 });
  t.same(
    first.map((r) => r.seq),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  t.same(JSON.parse(first[0]?.json ?? ''), appended[0], 'the stored JSON is the record');
  t.equal(Object.keys(JSON.parse(first[0]?.json ?? '{}'))[4], 'seq', 'seq sits in schema order');
  const next = await cache.read({ afterSeq: 10, limit: 100, maxBytes: 1e6 });
  t.same(
    next.map((r) => r.seq),
    Array.from({ length: 15 }, (_, i) => i + 11),
  );
  t.same(await cache.read({ afterSeq: 25, limit: 10, maxBytes: 1e6 }), []);
});

t.test('read stops at maxBytes but always returns at least one record', async (t) => {
  const cache = await opened(t, t.testdir());
  for (let n = 0; n < 5; n++) await cache.append(draft(n, n === 2 ? { flags: ['event'] } : {}));
  const all = await cache.read({ afterSeq: 0, limit: 100, maxBytes: 1e6 });
  const two = byteLength(all.slice(0, 2));
  t.same(
    (await cache.read({ afterSeq: 0, limit: 100, maxBytes: two })).map((r) => r.seq),
    [1, 2],
  );
  t.same(
    (await cache.read({ afterSeq: 0, limit: 100, maxBytes: two + 1 })).map((r) => r.seq),
    [1, 2],
  );
  t.same(
    (await cache.read({ afterSeq: 2, limit: 100, maxBytes: 1 })).map((r) => r.seq),
    [3],
    'one record even when it alone is over maxBytes',
  );
});

t.test('remove deletes a range durably and stats follow the backlog', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  let cache = new LevelCache({ keyring, path });
  await cache.open();
  const appended = await Promise.all(Array.from({ length: 25 }, (_, n) => cache.append(draft(n))));
  const all = await cache.read({ afterSeq: 0, limit: 100, maxBytes: 1e6 });
  t.same(await cache.stats(), {
    records: 25,
    bytes: byteLength(all),
    firstSeq: 1,
    lastSeq: 25,
    oldestCapturedAt: appended[0]?.capturedAt,
    nextSeq: 26,
  });

  await cache.remove(1, 10);
  await cache.remove(1, 10);
  await cache.remove(24, 30);
  const expected = {
    records: 13,
    bytes: byteLength(all.slice(10, 23)),
    firstSeq: 11,
    lastSeq: 23,
    oldestCapturedAt: appended[10]?.capturedAt,
    nextSeq: 26,
  };
  t.same(await cache.stats(), expected, 'removing twice or past the end is harmless');
  await cache.close();

  cache = await opened(t, path, { keyring });
  t.same(await cache.stats(), expected, 'the same after reopening');
  t.same(
    (await cache.read({ afterSeq: 0, limit: 1, maxBytes: 1e6 })).map((r) => r.seq),
    [11],
  );
});

t.test('readPage: the records of a read as one piece of JSON, commas counted in maxBytes', async (t) => {
  const cache = await opened(t, t.testdir());
  t.equal(await cache.readPage({ afterSeq: 0, limit: 10, maxBytes: 1e6 }), null, 'null when empty');
  await Promise.all(Array.from({ length: 20 }, (_, n) => cache.append(draft(n))));
  await cache.remove(5, 5);
  const records = await cache.read({ afterSeq: 2, limit: 8, maxBytes: 1e6 });
  const page = await cache.readPage({ afterSeq: 2, limit: 8, maxBytes: 1e6 });
  t.match(page, { firstSeq: 3, lastSeq: 11, count: 8 }, 'seq 5 (removed) is skipped, limit holds');
  const joined = records.map((r) => r.json).join(',');
  t.equal(Buffer.from(page?.json ?? []).toString(), joined, 'the same JSON, joined by commas');
  t.same(
    JSON.parse(`[${joined}]`).map((r: AttacheRecord) => r.seq),
    [3, 4, 6, 7, 8, 9, 10, 11],
  );
  const three = Buffer.byteLength(
    records
      .slice(0, 3)
      .map((r) => r.json)
      .join(','),
  );
  t.match(await cache.readPage({ afterSeq: 2, limit: 8, maxBytes: three }), { count: 3, lastSeq: 6 });
  t.match(
    await cache.readPage({ afterSeq: 2, limit: 8, maxBytes: three - 1 }),
    { count: 2, lastSeq: 4 },
    'a byte short of the third record with its comma',
  );
  t.match(await cache.readPage({ afterSeq: 2, limit: 8, maxBytes: 1 }), { count: 1 }, 'at least one');
});

t.test('pages and reads hold the outbox only, never the values stored beside it', async (t) => {
  const path = t.testdir();
  const cache = await opened(t, path);
  // Keys on both sides of the outbox's: idempotency keys and counters before it, tokens and state after.
  await cache.append(draft(0), { idempotencyKey: 'message-1' });
  await cache.token('patient-1');
  await cache.setState('zzz', { after: 'the outbox' });
  await cache.append(draft(1));
  const page = await cache.readPage({ afterSeq: 0, limit: 100, maxBytes: 1e6 });
  t.match(page, { firstSeq: 1, lastSeq: 2, count: 2 });
  t.same(
    JSON.parse(`[${Buffer.from(page?.json ?? []).toString()}]`).map((r: AttacheRecord) => r.seq),
    [1, 2],
  );
  t.same(
    (await cache.read({ afterSeq: 1, limit: 100, maxBytes: 1e6 })).map((r) => r.seq),
    [2],
  );
  t.equal(
    await cache.readPage({ afterSeq: 2, limit: 100, maxBytes: 1e6 }),
    null,
    'nothing after the last record',
  );
  t.equal(await cache.quarantineCount(), 0, 'no other value was taken for a record and quarantined');
  t.same(await cache.getState('zzz'), { after: 'the outbox' });
  t.equal(await cache.token('patient-1'), await cache.token('patient-1'));
});

t.test('readPage with room: spaces around the JSON, whatever the buffer held before', async (t) => {
  const cache = await opened(t, t.testdir());
  await Promise.all(Array.from({ length: 30 }, (_, n) => cache.append(draft(n))));
  const joined = (await cache.read({ afterSeq: 0, limit: 30, maxBytes: 1e6 })).map((r) => r.json).join(',');
  // Garbage in freed memory, which Node's unzeroed allocations may hand out again.
  for (let i = 0; i < 50; i++) Buffer.allocUnsafe(256 * 1024).fill(0x41);
  const room = { before: 150, after: 2 };
  const page = await cache.readPage({ afterSeq: 0, limit: 30, maxBytes: 1e6, room });
  const bytes = Buffer.from(page?.json ?? []);
  t.equal(bytes.length, 150 + Buffer.byteLength(joined) + 2);
  t.equal(bytes.subarray(150, bytes.length - 2).toString(), joined, 'the JSON between the room');
  t.equal(bytes.subarray(0, 150).toString(), ' '.repeat(150), 'spaces before, nothing left over');
  t.equal(bytes.subarray(bytes.length - 2).toString(), '  ', 'spaces after');
  t.match(page, { firstSeq: 1, lastSeq: 30, count: 30 });
  // A page read ahead with other room is not handed out: it is read again with this room.
  const next = await cache.readPage({ afterSeq: 0, limit: 30, maxBytes: 1e6 });
  t.equal(Buffer.from(next?.json ?? []).toString(), joined, 'no room asked, none given');
  for (const bad of [{ before: -1, after: 0 }, { before: 0, after: 5000 }, { before: 1.5, after: 0 }, null]) {
    await t.rejects(
      cache.readPage({ afterSeq: 0, limit: 1, maxBytes: 1e6, room: bad as never }),
      TypeError,
      `room ${JSON.stringify(bad)} refused`,
    );
  }
});

t.test('a released page gives its buffer to a later page, once; a page held is never written', async (t) => {
  const cache = await opened(t, t.testdir());
  await Promise.all(Array.from({ length: 40 }, (_, n) => cache.append(draft(n))));
  const options = (afterSeq: number) => ({
    afterSeq,
    limit: 4,
    maxBytes: 1e6,
    room: { before: 8, after: 2 },
  });
  const text = (page: RecordPage | null) => Buffer.from(page?.json ?? []).toString();
  const one = await cache.readPage(options(0));
  const kept = text(one);
  one?.release?.();
  one?.release?.(); // twice: the buffer is still given back only once
  const two = await cache.readPage(options(4)); // read ahead before one was released: its own buffer
  const three = await cache.readPage(options(8)); // read ahead after: one's buffer
  const four = await cache.readPage(options(12));
  t.equal(three?.json.buffer, one?.json.buffer, "a later page is read into the released page's buffer");
  t.not(four?.json.buffer, one?.json.buffer, 'by one page only');
  t.not(two?.json.buffer, one?.json.buffer);
  t.same(
    seqsOf({ json: Buffer.from(text(three)).subarray(8, -2) }),
    [9, 10, 11, 12],
    'its bytes are its own',
  );
  t.same(seqsOf({ json: Buffer.from(text(two)).subarray(8, -2) }), [5, 6, 7, 8], 'pages held keep theirs');
  t.notSame(text(three), kept);
  // Draining the rest, each page released once published: every record once, in order.
  const seqs: number[] = [];
  for (let page = await cache.readPage(options(16)); page !== null; ) {
    seqs.push(...seqsOf({ json: Buffer.from(page.json).subarray(8, -2) }));
    const next = options(page.lastSeq);
    page.release?.();
    page = await cache.readPage(next);
  }
  t.same(
    seqs,
    Array.from({ length: 24 }, (_, i) => i + 17),
  );
});

/** The seqs of a page, parsed from its JSON as the broker's side would. */
function seqsOf(page: { json: Uint8Array } | null): number[] {
  if (page === null) return [];
  return (JSON.parse(`[${Buffer.from(page.json).toString()}]`) as AttacheRecord[]).map((r) => r.seq);
}

/** Pages of `limit` records from `afterSeq` on, as a window reads them: every seq handed out, in order. */
async function drainPages(cache: LevelCache, afterSeq: number, limit: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let page = await cache.readPage({ afterSeq, limit, maxBytes: 1e6 }); page !== null; ) {
    seqs.push(...seqsOf(page));
    page = await cache.readPage({ afterSeq: page.lastSeq, limit, maxBytes: 1e6 });
  }
  return seqs;
}

t.test(
  'readPage reads the next page ahead: records stored meanwhile are handed out once, in order',
  async (t) => {
    const cache = await opened(t, t.testdir());
    await Promise.all(Array.from({ length: 5 }, (_, n) => cache.append(draft(n))));
    const first = await cache.readPage({ afterSeq: 0, limit: 3, maxBytes: 1e6 });
    t.same(seqsOf(first), [1, 2, 3]);
    // The page after it (4, 5) is being read while these are stored.
    await Promise.all(Array.from({ length: 4 }, (_, n) => cache.append(draft(5 + n))));
    t.same(await drainPages(cache, 3, 3), [4, 5, 6, 7, 8, 9], 'none missed, none twice');

    // The page read ahead at the end found nothing; a record stored since is still handed out.
    await cache.append(draft(9));
    t.same(seqsOf(await cache.readPage({ afterSeq: 9, limit: 3, maxBytes: 1e6 })), [10]);
    t.same(
      seqsOf(await cache.readPage({ afterSeq: 0, limit: 3, maxBytes: 1e6 })),
      [1, 2, 3],
      'other options read afresh',
    );
    t.same(
      seqsOf(await cache.readPage({ afterSeq: 3, limit: 2, maxBytes: 1e6 })),
      [4, 5],
      'another limit too',
    );
  },
);

t.test('readPage never hands out a record read ahead that was removed or dropped since', async (t) => {
  const cache = await opened(t, t.testdir(), {
    limits: { maxRecords: 6, maxBytes: 1e12, maxAgeMs: 0, whenFull: 'drop-oldest' },
  });
  await Promise.all(Array.from({ length: 6 }, (_, n) => cache.append(draft(n))));
  t.same(seqsOf(await cache.readPage({ afterSeq: 0, limit: 2, maxBytes: 1e6 })), [1, 2]);
  await cache.remove(3, 3); // past the page handed out: the page read ahead (3, 4) is stale
  t.same(seqsOf(await cache.readPage({ afterSeq: 2, limit: 2, maxBytes: 1e6 })), [4, 5]);
  // The page read ahead now holds 6; six appends drop the five oldest (1, 2, 4, 5, 6) to make room.
  await Promise.all(Array.from({ length: 6 }, (_, n) => cache.append(draft(6 + n))));
  t.same(await drainPages(cache, 5, 2), [7, 8, 9, 10, 11, 12], 'seq 6, dropped meanwhile, is not handed out');
});

t.test('readPage never hands out a record read ahead that expired since', async (t) => {
  const cache = await opened(t, t.testdir(), {
    limits: { maxRecords: 1e9, maxBytes: 1e12, maxAgeMs: 60_000, whenFull: 'refuse' },
  });
  await Promise.all(Array.from({ length: 6 }, (_, n) => cache.append(draft(n))));
  t.same(seqsOf(await cache.readPage({ afterSeq: 0, limit: 2, maxBytes: 1e6 })), [1, 2]);
  // Seqs 1-4 were captured at 0-3 s, more than a minute before this "now"; 5 and 6 were not.
  t.same(await cache.expire(Date.UTC(2026, 10, 1) + 64_000), { dropped: 4 });
  t.same(await drainPages(cache, 2, 2), [5, 6], 'seqs 3 and 4, read ahead, then expired, are not handed out');
});

t.test('readPage hands out a record restored into the range of the page read ahead', async (t) => {
  const cache = await opened(t, t.testdir());
  await Promise.all(Array.from({ length: 6 }, (_, n) => cache.append(draft(n))));
  const [third] = await cache.read({ afterSeq: 2, limit: 1, maxBytes: 1e6 });
  await cache.remove(3, 3);
  t.same(seqsOf(await cache.readPage({ afterSeq: 0, limit: 2, maxBytes: 1e6 })), [1, 2]);
  t.same(await cache.restore([JSON.parse(third?.json ?? '') as AttacheRecord]), { stored: 1, skipped: 0 });
  t.same(await drainPages(cache, 2, 2), [3, 4, 5, 6]);
});

t.test('pages read ahead find records stored since, and pages stopped by maxBytes lose none', async (t) => {
  const cache = await opened(t, t.testdir());
  await Promise.all(Array.from({ length: 4 }, (_, n) => cache.append(draft(n))));
  t.same(seqsOf(await cache.readPage({ afterSeq: 0, limit: 2, maxBytes: 1e6 })), [1, 2]);
  // The page after it (3, 4) was read to the end of what was stored; one more is stored now.
  await cache.append(draft(4));
  t.same(
    seqsOf(await cache.readPage({ afterSeq: 4, limit: 2, maxBytes: 1e6 })),
    [5],
    'not null: 5 is stored',
  );
  await Promise.all(Array.from({ length: 20 }, (_, n) => cache.append(draft(5 + n))));
  const small = Buffer.byteLength(
    (await cache.read({ afterSeq: 5, limit: 3, maxBytes: 1e6 })).map((r) => r.json).join(','),
  );
  const seqs: number[] = [];
  for (let page = await cache.readPage({ afterSeq: 5, limit: 100, maxBytes: small }); page !== null; ) {
    t.ok(page.json.length <= small, 'each page within maxBytes');
    seqs.push(...seqsOf(page));
    page = await cache.readPage({ afterSeq: page.lastSeq, limit: 100, maxBytes: small });
  }
  t.same(
    seqs,
    Array.from({ length: 20 }, (_, i) => i + 6),
    'pages stopped by maxBytes lose no record between them',
  );
});

t.test('removes arriving together keep the counts right, for records read or not', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  let cache = new LevelCache({ keyring, path });
  await cache.open();
  await Promise.all(Array.from({ length: 30 }, (_, n) => cache.append(draft(n))));
  const all = await cache.read({ afterSeq: 0, limit: 100, maxBytes: 1e6 });
  await cache.close();
  // Reopened: only seqs 1-10 are read (their sizes known); 11-12 and 20-22 are removed unread.
  cache = new LevelCache({ keyring, path });
  await cache.open();
  await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 });
  await Promise.all([cache.remove(1, 5), cache.remove(3, 12), cache.remove(20, 22), cache.remove(11, 11)]);
  const left = [...all.slice(12, 19), ...all.slice(22)];
  const expected = { records: 15, bytes: byteLength(left), firstSeq: 13, lastSeq: 30, nextSeq: 31 };
  t.match(await cache.stats(), expected, 'counts after four overlapping removes at once');
  await cache.close();
  cache = await opened(t, path, { keyring });
  t.match(await cache.stats(), expected, 'the same after reopening');
  t.same(
    (await cache.read({ afterSeq: 0, limit: 100, maxBytes: 1e6 })).map((r) => r.seq),
    left.map((r) => r.seq),
  );
});

t.test('records read, then dropped or expired before their remove, are not counted twice', async (t) => {
  const dropping = await opened(t, join(t.testdir(), 'dropping'), {
    limits: { maxRecords: 6, maxBytes: 1e12, maxAgeMs: 0, whenFull: 'drop-oldest' },
  });
  await Promise.all(Array.from({ length: 6 }, (_, n) => dropping.append(draft(n))));
  await dropping.read({ afterSeq: 0, limit: 6, maxBytes: 1e6 }); // every size of 1-6 noted
  await Promise.all([dropping.append(draft(6)), dropping.append(draft(7))]); // drops 1 and 2
  await dropping.remove(1, 6);
  const left = await dropping.read({ afterSeq: 0, limit: 100, maxBytes: 1e6 });
  t.same(
    left.map((r) => r.seq),
    [7, 8],
  );
  t.match(
    await dropping.stats(),
    { records: 2, bytes: byteLength(left) },
    'the drops were not removed again',
  );

  const expiring = await opened(t, join(t.testdir(), 'expiring'), {
    limits: { maxRecords: 1e9, maxBytes: 1e12, maxAgeMs: 60_000, whenFull: 'refuse' },
  });
  await Promise.all(Array.from({ length: 8 }, (_, n) => expiring.append(draft(n))));
  await expiring.read({ afterSeq: 0, limit: 6, maxBytes: 1e6 });
  t.same(await expiring.expire(Date.UTC(2026, 10, 1) + 64_000), { dropped: 4 });
  await expiring.remove(1, 6);
  await expiring.remove(1, 6);
  const rest = await expiring.read({ afterSeq: 0, limit: 100, maxBytes: 1e6 });
  t.same(
    rest.map((r) => r.seq),
    [7, 8],
  );
  t.match(await expiring.stats(), { records: 2, bytes: byteLength(rest) }, 'expired records counted once');
});

t.test('a page of maxBytes is filled across records of very different sizes', async (t) => {
  const cache = await opened(t, t.testdir());
  const observation = {
    code: 'MDC_PULS_OXIM_SAT_O2',
    system: 'MDC',
    value: 1,
    unit: '%',
    status: 'valid',
  } as const;
  // One large record, then small ones: the mean size says far fewer small records fill a page.
  await cache.append(draft(0, { observations: Array.from({ length: 200 }, () => observation) }));
  await Promise.all(Array.from({ length: 200 }, (_, n) => cache.append(draft(n + 1))));
  const first150 = byteLength(await cache.read({ afterSeq: 1, limit: 150, maxBytes: 1e6 }));
  const page = await cache.read({ afterSeq: 1, limit: 1000, maxBytes: first150 });
  t.equal(page.length, 150, 'as many small records as fit');
  t.same(
    page.map((r) => r.seq),
    Array.from({ length: 150 }, (_, i) => i + 2),
  );
  t.equal((await cache.read({ afterSeq: 1, limit: 7, maxBytes: 1e6 })).length, 7, 'limit still holds');
});

t.test('seq continues across reopen, also after the outbox was emptied', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  let cache = new LevelCache({ keyring, path });
  await cache.open();
  for (let n = 0; n < 3; n++) await cache.append(draft(n));
  await cache.close();

  cache = new LevelCache({ keyring, path });
  await cache.open();
  t.same(
    (await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 })).map((r) => JSON.parse(r.json)),
    [0, 1, 2].map((n) => ({ ...draft(n), seq: n + 1 })),
    'records written before close are readable after reopen',
  );
  t.equal((await cache.append(draft(3))).seq, 4);
  await cache.remove(1, 4);
  await cache.close();

  cache = await opened(t, path, { keyring });
  t.same(await cache.stats(), {
    records: 0,
    bytes: 0,
    firstSeq: null,
    lastSeq: null,
    oldestCapturedAt: null,
    nextSeq: 5,
  });
  t.equal((await cache.append(draft(4))).seq, 5, 'no seq is handed out twice');
});

t.test('appends share synced writes, at most maxBatchRecords each', async (t) => {
  const logger = recordingLogger();
  const cache = await opened(t, t.testdir(), { maxBatchRecords: 7, commitIntervalMs: 20, logger });
  const appended = await Promise.all(Array.from({ length: 50 }, (_, n) => cache.append(draft(n))));
  t.same(
    appended.map((r) => r.seq),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  const groups = logger.entries.filter((e) => e.msg === 'appends committed').map((e) => e.records as number);
  t.equal(
    groups.reduce((a, b) => a + b, 0),
    50,
    'every append was committed once',
  );
  t.ok(
    groups.every((n) => n <= 7),
    `no group over maxBatchRecords: ${groups}`,
  );
  t.ok(groups.length < 50, 'appends were grouped');
});

t.test('the first reading on an idle cache is stored without waiting for a timer', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const clock = new ManualClock();
  const cache = await opened(t, path, { keyring, clock });
  const record = await cache.append(draft(0));
  t.equal(clock.pending, 0, 'resolved with the clock never advanced and no timer set');
  await cache.close();
  const reopened = await opened(t, path, { keyring });
  t.same(
    (await reopened.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 })).map((r) => r.seq),
    [record.seq],
    'it was written before the append resolved',
  );
});

t.test('close commits the appends still queued', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const cache = new LevelCache({ keyring, path, commitIntervalMs: 1000 });
  await cache.open();
  const pending = [0, 1, 2].map((n) => cache.append(draft(n)));
  await cache.close();
  t.same(
    (await Promise.all(pending)).map((r) => r.seq),
    [1, 2, 3],
  );
  const reopened = await opened(t, path, { keyring });
  t.equal((await reopened.stats()).records, 3);
});

t.test('a second cache on the same path is refused with ATTACHE_CACHE_LOCKED', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  const cache = await opened(t, path, { keyring });
  const second = new LevelCache({ keyring, path });
  await t.rejects(second.open(), {
    code: 'ATTACHE_CACHE_LOCKED',
    cause: { cause: { code: 'LEVEL_LOCKED' } },
  });
  t.equal((await cache.append(draft(0))).seq, 1, 'the first one keeps working');
});

t.test('calls outside open..close reject with ATTACHE_CACHE_CLOSED', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ keyring, path: t.testdir() });
  const calls = (): Promise<unknown>[] => [
    cache.append(draft(0)),
    cache.read({ afterSeq: 0, limit: 1, maxBytes: 1 }),
    cache.remove(1, 1),
    cache.token('MRN-1'),
    cache.stats(),
    cache.getState('k'),
    cache.setState('k', 1),
  ];
  for (const call of calls()) await t.rejects(call, { code: 'ATTACHE_CACHE_CLOSED' });
  await cache.open();
  await cache.close();
  await cache.close();
  for (const call of calls()) await t.rejects(call, { code: 'ATTACHE_CACHE_CLOSED' });
});

t.test('open while open returns the same promise; open while closing is refused', async (t) => {
  const { keyring } = await tempKeyring(t);
  const cache = new LevelCache({ keyring, path: t.testdir() });
  const [a, b] = [cache.open(), cache.open()];
  t.equal(a, b);
  await a;
  await cache.open();
  const closing = cache.close();
  await t.rejects(cache.open(), { code: 'ATTACHE_CACHE_CLOSED' });
  await closing;
  await cache.open();
  t.equal((await cache.append(draft(0))).seq, 1, 'it can be opened again after close');
  await cache.close();
});

t.test('a draft that breaks the record schema is refused and uses no seq', async (t) => {
  const cache = await opened(t, t.testdir());
  const leaky = draft(0, {
    patient: { token: 'pt_aaaaaaaaaaaaaaaaaaaaaaaaaa', id: 'MRN-0042' } as AttacheRecord['patient'],
  });
  await t.rejects(cache.append(leaky), {
    code: 'ATTACHE_MALFORMED',
    issues: [{ path: '/patient/id' }],
  });
  t.equal((await cache.append(draft(1))).seq, 1);
  t.notMatch((await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 }))[0]?.json, 'MRN-0042');
});

t.test('state values are kept as JSON across reopen', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  let cache = new LevelCache({ keyring, path });
  await cache.open();
  t.equal(await cache.getState('lastWindow'), undefined);
  const result = { outcome: 'drained', records: 12, firstSeq: 1, lastSeq: 12 };
  await cache.setState('lastWindow', result);
  t.same(await cache.getState('lastWindow'), result);
  await cache.close();
  cache = await opened(t, path, { keyring });
  t.same(await cache.getState('lastWindow'), result);
});

t.test('a path that cannot hold a database fails with ATTACHE_CACHE_WRITE', async (t) => {
  const { keyring } = await tempKeyring(t);
  const dir = t.testdir({ 'not-a-dir': 'plain file' });
  const cache = new LevelCache({ keyring, path: join(dir, 'not-a-dir') });
  await t.rejects(cache.open(), { code: 'ATTACHE_CACHE_WRITE' });
  await t.rejects(cache.append(draft(0)), { code: 'ATTACHE_CACHE_CLOSED' });
  await cache.close();
});

t.test('programmer mistakes are TypeErrors naming the argument', async (t) => {
  const { keyring } = await tempKeyring(t);
  t.throws(() => new LevelCache({ keyring, path: '' }), new TypeError('"path" must be a non-empty string'));
  t.throws(() => new LevelCache({ keyring, path: 'x', commitIntervalMs: -1 }), TypeError);
  t.throws(() => new LevelCache({ keyring, path: 'x', maxBatchRecords: 0 }), TypeError);
  const cache = await opened(t, t.testdir());
  await t.rejects(cache.read({ afterSeq: -1, limit: 1, maxBytes: 1 }), /"afterSeq"/);
  await t.rejects(cache.read({ afterSeq: 0, limit: 0, maxBytes: 1 }), /"limit"/);
  await t.rejects(cache.read({ afterSeq: 0, limit: 1, maxBytes: 0 }), /"maxBytes"/);
  await t.rejects(cache.remove(0, 1), /"firstSeq"/);
  await t.rejects(cache.remove(5, 4), /"lastSeq"/);
  await t.rejects(cache.token(''), /"patientId"/);
  await t.rejects(cache.getState(''), /"key"/);
  await t.rejects(cache.setState('k', undefined), /"value"/);
});
