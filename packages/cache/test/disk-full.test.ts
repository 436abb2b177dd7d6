// A real full disk: a 4 MB tmpfs mounted for the test (needs root; skipped otherwise). The
// ulimit-based test in recovery.test.ts covers the same path where mounting is not allowed.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelCache } from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import t from 'tap';
import { draft, tempKeyring } from './fixtures/helpers.js';

function mountTmpfs(dir: string): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
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
