import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadOrCreateKeyring } from '@attache/cache';
import { FolderSource, UpStore, UsbSource } from '@attache/files-up';
import t, { type Test } from 'tap';

const run = promisify(execFile);
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

async function opened(t: Test, limits?: ConstructorParameters<typeof UpStore>[0]['limits']) {
  const dir = t.testdir();
  const store = new UpStore({
    path: join(dir, 'files-up'),
    keyring: await loadOrCreateKeyring(join(dir, 'key')),
    ...(limits ? { limits } : {}),
  });
  await store.open();
  return { dir, store };
}

t.test(
  'a folder source takes each file once by content, skips links and files still being written',
  async (t) => {
    const { dir, store } = await opened(t);
    const share = join(dir, 'share');
    await mkdir(join(share, 'logs'), { recursive: true });
    const old = new Date(Date.now() - 60_000);
    const files = {
      'report.txt': 'service report\n',
      'logs/error.log': 'E42 occlusion\n',
      'logs/copy-of-report.txt': 'service report\n',
      'run-me.sh': '#!/bin/sh\ntouch /tmp/attache-pwned\n',
    };
    for (const [name, content] of Object.entries(files)) {
      await writeFile(join(share, name), content);
      await utimes(join(share, name), old, old);
    }
    await chmod(join(share, 'run-me.sh'), 0o755);
    await writeFile(join(dir, 'secret'), 'outside the share');
    await symlink(join(dir, 'secret'), join(share, 'link'));
    await writeFile(join(share, 'being-written.log'), 'half');
    const source = new FolderSource({ path: share, deviceId: 'vent-1', store, settleMs: 10_000 });
    t.same(await source.scan(), { captured: 3, duplicates: 1, refused: 0, skipped: 2 });
    const stored = await store.list();
    t.same(
      stored.map((f) => f.sha256).sort(),
      [sha(files['report.txt']), sha(files['logs/error.log']), sha(files['run-me.sh'])].sort(),
    );
    t.notOk(
      stored.some((f) => f.sha256 === sha('outside the share')),
      'a link is not followed',
    );
    await t.rejects(stat('/tmp/attache-pwned'), { code: 'ENOENT' }, 'nothing was executed');
    t.same(
      await source.scan(),
      { captured: 0, duplicates: 0, refused: 0, skipped: 2 },
      'unchanged files are not read again',
    );
    await utimes(join(share, 'being-written.log'), old, old);
    t.same(await source.scan(), { captured: 1, duplicates: 0, refused: 0, skipped: 1 }, 'taken once settled');
    const again = new FolderSource({ path: share, deviceId: 'vent-1', store, settleMs: 10_000 });
    t.match(
      await again.scan(),
      { captured: 0, duplicates: 5 },
      'a new source (a restart) re-reads but stores nothing twice',
    );
    t.same(await new FolderSource({ path: join(dir, 'missing'), deviceId: 'x', store }).scan(), {
      captured: 0,
      duplicates: 0,
      refused: 0,
      skipped: 0,
    });
  },
);

t.test('a folder source counts what a full store refuses and takes it once there is room', async (t) => {
  const { dir, store } = await opened(t, { maxFiles: 1, maxBytes: 1000, whenFull: 'refuse' });
  const share = join(dir, 'share');
  await mkdir(share);
  await writeFile(join(share, 'a.log'), 'a');
  await writeFile(join(share, 'b.log'), 'b');
  const source = new FolderSource({ path: share, deviceId: 'vent-1', store, settleMs: 0 });
  t.match(await source.scan(), { captured: 1, refused: 1 });
  const [first] = await store.list();
  if (first) await store.uploaded(first, 'k');
  t.match(await source.scan(), { captured: 1, refused: 0 }, 'the refused file is tried again');
});

t.test('a USB stick (a FAT image) is read with mtools without mounting it', async (t) => {
  const { dir, store } = await opened(t);
  const image = join(dir, 'stick.img');
  await writeFile(join(dir, 'a.log'), 'device log\n'.repeat(500));
  await writeFile(join(dir, 'b.bin'), Buffer.alloc(70_000, 7));
  await run('truncate', ['-s', '8M', image]);
  await run('mkfs.vfat', [image]);
  await run('mmd', ['-i', image, '::/LOGS'], { env });
  await run('mcopy', ['-i', image, join(dir, 'a.log'), '::/LOGS/error 2026.log'], { env });
  await run('mcopy', ['-i', image, join(dir, 'b.bin'), '::/DUMP.BIN'], { env });
  await run('mcopy', ['-i', image, join(dir, 'a.log'), '::/COPY.LOG'], { env });
  const source = new UsbSource({ device: image, deviceId: 'vent-1', store });
  t.same(await source.scan(), { captured: 2, duplicates: 1, refused: 0, skipped: 0 });
  const files = await store.list();
  t.same(
    files.map((f) => f.sha256).sort(),
    [sha(await readFile(join(dir, 'a.log'))), sha(await readFile(join(dir, 'b.bin')))].sort(),
  );
  t.ok(files.every((f) => f.source === 'usb'));
  t.match(await new UsbSource({ device: image, deviceId: 'vent-1', store, maxFiles: 1 }).scan(), {
    skipped: 2,
  });
  await t.rejects(new UsbSource({ device: join(dir, 'a.log'), deviceId: 'vent-1', store }).scan(), {
    code: 'ATTACHE_MALFORMED',
  });
});

t.test('a file the store refuses on a stick is counted, not fatal', async (t) => {
  const { dir, store } = await opened(t, { maxFiles: 10, maxBytes: 100, whenFull: 'refuse' });
  const image = join(dir, 'stick.img');
  await writeFile(join(dir, 'big'), Buffer.alloc(500, 1));
  await run('truncate', ['-s', '8M', image]);
  await run('mkfs.vfat', [image]);
  await run('mcopy', ['-i', image, join(dir, 'big'), '::/BIG.LOG'], { env });
  t.match(await new UsbSource({ device: image, deviceId: 'vent-1', store }).scan(), {
    captured: 0,
    refused: 1,
  });
  t.throws(() => new UsbSource({ device: '', deviceId: 'x', store }), TypeError);
  t.throws(() => new FolderSource({ path: '', deviceId: 'x', store }), TypeError);
});
