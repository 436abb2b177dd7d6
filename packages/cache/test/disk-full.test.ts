// A real full disk: a 4 MB tmpfs mounted for the test (needs root; skipped otherwise). The
// ulimit-based test in recovery.test.ts covers the same path where mounting is not allowed.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache } from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import t, { type Test } from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

function mountTmpfs(dir: string, sizeMb = 4): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

const raw = Buffer.alloc(300, 0x42).toString('base64');

t.test('ENOSPC on a small tmpfs: ATTACHE_CACHE_FULL, then working again once space frees', async (t) => {
  const mnt = await mkdtemp(join(tmpdir(), 'attache-enospc-'));
  if (!mountTmpfs(mnt)) {
    await rmdir(mnt);
    t.comment('skipped: cannot mount a tmpfs here (needs root and mount rights)');
    return;
  }
  t.teardown(async () => {
    execFileSync('umount', ['-l', mnt]);
    await rmdir(mnt);
  });
  const filler = join(mnt, 'filler');
  await writeFile(filler, Buffer.alloc(2 * 1024 * 1024)); // freed later, to make room again
  const { keyring } = await tempKeyring(t);
  const path = join(mnt, 'cache');
  const cache = new LevelCache({ path, keyring });
  await cache.open();
  t.teardown(() => cache.close());

  const acked = new Map<number, number>();
  let failure: unknown;
  for (let n = 0; !failure && n < 100_000; n += 50) {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, k) => cache.append(draft(n + k, { raw }))),
    );
    for (const r of results) {
      if (r.status === 'fulfilled') acked.set(r.value.seq, r.value.clock.monotonicMs);
      else failure ??= r.reason;
    }
  }
  t.match(failure, { code: 'ATTACHE_CACHE_FULL', cause: { message: /No space left on device/ } });
  t.equal((await cache.health()).full, true, 'health reports the cache full, without failing');
  await t.rejects(
    cache.append(draft(1, { raw })),
    { code: 'ATTACHE_CACHE_FULL' },
    'still full (the reopen finds no room)',
  );

  await rm(filler);
  const after = await cache.append(draft(999_999));
  t.ok(after.seq > Math.max(...acked.keys()), 'appends work again once space frees, with the next seq');
  acked.set(after.seq, 999_999);
  await cache.close();
  await cache.open();
  const stored = new Map<number, AttacheRecord>();
  for (let afterSeq = 0; ; ) {
    const page = await cache.read({ afterSeq, limit: 1000, maxBytes: 1e7 });
    if (page.length === 0) break;
    for (const { seq, json } of page) stored.set(seq, JSON.parse(json));
    afterSeq = page.at(-1)?.seq ?? afterSeq;
  }
  const lost = [...acked].filter(([seq, n]) => stored.get(seq)?.clock.monotonicMs !== n);
  t.same(lost, [], `all ${acked.size} records acknowledged before and after are intact`);
  t.equal(await cache.quarantineCount(), 0, 'every record decrypts');
});

// LevelDB may rewrite its level-0 tables and level 1 (~26 MiB) before deleting them: see the README.
const reserveBytes = 32 * 1024 * 1024;
/** Large records fill the disk in few appends. */
const bulky = Buffer.alloc(8000, 0x43).toString('base64');

/** Polls `done` every 20 ms until it holds (or fails the wait after 30 s). */
async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Appends groups of 50 until the disk is full; resolves with what was acknowledged and the failure. */
async function fill(
  cache: LevelCache,
  from: number,
): Promise<{ acked: Map<number, number>; failure: unknown }> {
  const acked = new Map<number, number>();
  let failure: unknown;
  for (let n = from; !failure && n < from + 100_000; n += 50) {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, k) => cache.append(draft(n + k, { raw: bulky }))),
    );
    for (const r of results) {
      if (r.status === 'fulfilled') acked.set(r.value.seq, r.value.clock.monotonicMs);
      else failure ??= r.reason;
    }
  }
  return { acked, failure };
}

/** Reads and removes every record, page by page, as an upload does; resolves with them by seq. */
async function drain(cache: LevelCache): Promise<Map<number, number>> {
  const read = new Map<number, number>();
  for (;;) {
    const page = await cache.read({ afterSeq: 0, limit: 500, maxBytes: 1e6 });
    if (page.length === 0) return read;
    for (const { seq, json } of page) read.set(seq, (JSON.parse(json) as AttacheRecord).clock.monotonicMs);
    await cache.remove(page[0]?.seq ?? 1, page.at(-1)?.seq ?? 1);
  }
}

async function reserveWorld(t: Test, sizeMb: number) {
  const mnt = await mkdtemp(join(tmpdir(), 'attache-reserve-'));
  if (!mountTmpfs(mnt, sizeMb)) {
    await rmdir(mnt);
    return undefined;
  }
  t.teardown(async () => {
    execFileSync('umount', ['-l', mnt]);
    await rmdir(mnt);
  });
  const { keyring } = await tempKeyring(t);
  const path = join(mnt, 'cache');
  // Groups of 20: appends queued behind the group that finds the disk full are refused without a write.
  const cache = new LevelCache({ path, keyring, reserveBytes, reserveCheckMs: 50, maxBatchRecords: 20 });
  t.teardown(() => cache.close());
  return { mnt, path, cache };
}

t.test(
  'with a reserve, a cache that filled the disk still opens, reads and drains, then takes readings again',
  async (t) => {
    const world = await reserveWorld(t, 96);
    if (!world) {
      t.comment('skipped: cannot mount a tmpfs here (needs root and mount rights)');
      return;
    }
    const { path, cache } = world;
    await cache.open();
    t.ok((await stat(join(path, 'attache-reserve'))).size === reserveBytes, 'the reserve is made at open');
    const { acked, failure } = await fill(cache, 0);
    t.match(failure, { code: 'ATTACHE_CACHE_FULL', cause: { message: /No space left on device/ } });
    t.equal(cache.refusing, true, 'refusing: devices that can are told to wait');
    t.equal((await cache.health()).full, true, 'health says full');
    await t.rejects(
      cache.append(draft(1)),
      { code: 'ATTACHE_CACHE_FULL' },
      'appends are refused, nothing written',
    );
    t.equal((await cache.stats()).records, acked.size, 'stats answer, counting every acknowledged record');

    await cache.close();
    await cache.open(); // a restart on the full disk
    t.equal(cache.refusing, true, 'after a restart on the full disk: still refusing');
    const read = await drain(cache);
    t.same(
      [...read].filter(([seq, n]) => acked.get(seq) !== n),
      [],
      'every record read back intact',
    );
    t.equal(read.size, acked.size, `all ${acked.size} acknowledged records drained, once each`);
    await until(() => !cache.refusing, 'accepting again after the drain');
    t.equal((await stat(join(path, 'attache-reserve'))).size, reserveBytes, 'the reserve is made again');
    const after = await cache.append(draft(777_777));
    t.ok(after.seq > Math.max(...acked.keys()), 'appends are stored again, with the next seq');
    t.equal((await cache.health()).full, false, 'health no longer says full');
  },
);

t.test('with a reserve, deleting a file on the full disk lets readings in again by themselves', async (t) => {
  const world = await reserveWorld(t, 96);
  if (!world) {
    t.comment('skipped: cannot mount a tmpfs here (needs root and mount rights)');
    return;
  }
  const { mnt, cache } = world;
  const filler = join(mnt, 'old-logs');
  await writeFile(filler, Buffer.alloc(2.5 * reserveBytes, 1));
  await cache.open();
  const { acked, failure } = await fill(cache, 0);
  t.match(failure, { code: 'ATTACHE_CACHE_FULL' });
  await rm(filler);
  await until(() => !cache.refusing, 'accepting again once the file is deleted');
  const more = await fill(cache, 200_000);
  t.ok(more.acked.size > 0, `appends are stored again (${more.acked.size} before the disk filled once more)`);
  await cache.close();
  await cache.open();
  const read = await drain(cache);
  const all = new Map([...acked, ...more.acked]);
  t.same(
    [...all].filter(([seq, n]) => read.get(seq) !== n),
    [],
    `all ${all.size} acknowledged records intact`,
  );
});

t.test(
  'the reserve is written byte by byte where fallocate(1) is missing, and bad reserve options are refused',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-reserve-write-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const { keyring } = await tempKeyring(t);
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'no-such-bin');
    t.teardown(() => {
      process.env.PATH = path;
    });
    await mkdir(join(dir, 'cache'));
    await writeFile(join(dir, 'cache', 'attache-reserve'), 'cut short by a power cut');
    const cache = new LevelCache({ path: join(dir, 'cache'), keyring, reserveBytes: 1536 * 1024 });
    await cache.open();
    t.equal(
      (await stat(join(dir, 'cache', 'attache-reserve'))).size,
      1536 * 1024,
      'the reserve has its size',
    );
    t.equal(cache.refusing, false, 'readings are accepted');
    await cache.close();
    await cache.open();
    t.equal(cache.refusing, false, 'reopened, the reserve in place is kept');
    await cache.close();
    t.throws(() => new LevelCache({ path: dir, keyring, reserveBytes: -1 }), TypeError);
    t.throws(() => new LevelCache({ path: dir, keyring, reserveCheckMs: 0 }), TypeError);
  },
);

t.test(
  'a disk too small for the reserve: readings are refused from the start, reads still work',
  async (t) => {
    const world = await reserveWorld(t, 40);
    if (!world) {
      t.comment('skipped: cannot mount a tmpfs here (needs root and mount rights)');
      return;
    }
    const { cache } = world;
    await cache.open();
    t.equal(cache.refusing, true, 'refusing: there is no room for the reserve and as much again');
    await t.rejects(cache.append(draft(1)), { code: 'ATTACHE_CACHE_FULL' });
    t.same(await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 }), [], 'reads answer');
  },
);
