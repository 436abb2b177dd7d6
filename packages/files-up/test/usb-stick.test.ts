// Writing onto a USB stick's FAT filesystem with mtools, never mounted: a real FAT image made with
// mkfs.vfat stands in for the stick's partition.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { copyToStick, type StickProgress, stickFiles } from '@attache/files-up';
import t from 'tap';

const run = promisify(execFile);
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

async function fatImage(dir: string, size: string, ...mkfs: string[]): Promise<string> {
  const image = join(dir, 'stick.img');
  await run('truncate', ['-s', size, image]);
  await run('mkfs.vfat', [...mkfs, image]);
  return image;
}

async function readBack(image: string, name: string): Promise<Buffer> {
  const { stdout } = await run('mcopy', ['-i', image, '-n', `::/${name}`, '-'], {
    env,
    encoding: 'buffer',
    maxBuffer: 1 << 24,
  });
  return stdout;
}

t.test('a file is written onto the stick, byte for byte, never over one there', async (t) => {
  const dir = t.testdir();
  const image = await fatImage(dir, '4M');
  const source = join(dir, 'export.attache');
  const content = randomBytes(300_000);
  await writeFile(source, content);
  const progress: StickProgress[] = [];
  const { name, sha256 } = await copyToStick(image, source, 'gw-1-2026-12-05T00-30-00-000Z.attache', (p) =>
    progress.push(p),
  );
  t.equal(name, 'gw-1-2026-12-05T00-30-00-000Z.attache');
  t.equal(sha256, createHash('sha256').update(content).digest('hex'), 'the hash of what was written');
  t.same(await stickFiles(image), [`::/${name}`]);
  t.ok((await readBack(image, name)).equals(content), 'identical to the file given');
  t.same(progress.at(-1), { bytes: content.length, totalBytes: content.length }, 'progress to the last byte');

  const { name: again } = await copyToStick(image, source, name);
  t.equal(again, 'gw-1-2026-12-05T00-30-00-000Z-1.attache', 'a new name beside the one there');
  t.equal((await stickFiles(image)).length, 2);
  t.ok((await readBack(image, name)).equals(content), 'the first file is untouched');
  t.equal((await copyToStick(image, source, 'NOEXT')).name, 'NOEXT');
  t.equal((await copyToStick(image, source, 'NOEXT')).name, 'NOEXT-1');
});

t.test('no stick, or no FAT filesystem on it: refused with ATTACHE_NO_STICK', async (t) => {
  const dir = t.testdir();
  const source = join(dir, 'export.attache');
  await writeFile(source, 'x');
  await t.rejects(copyToStick(join(dir, 'absent'), source, 'a.attache'), {
    code: 'ATTACHE_NO_STICK',
    message: `no USB stick at ${join(dir, 'absent')}: plug one in`,
  });
  const blank = join(dir, 'blank.img');
  await writeFile(blank, Buffer.alloc(1 << 20));
  await t.rejects(copyToStick(blank, source, 'a.attache'), {
    code: 'ATTACHE_NO_STICK',
    message: /no FAT filesystem/,
  });
  t.same(await readFile(blank), Buffer.alloc(1 << 20), 'nothing written on what is not FAT');
});

t.test('a full stick refuses the file and keeps nothing of it', async (t) => {
  const dir = t.testdir();
  const image = await fatImage(dir, '1M');
  const source = join(dir, 'export.attache');
  await writeFile(source, randomBytes(2_000_000));
  await t.rejects(copyToStick(image, source, 'big.attache'), {
    code: 'ATTACHE_STICK_REFUSED',
    message: /is full: 2000000 bytes needed, \d+ free/,
  });
  t.same(await stickFiles(image), [], 'nothing on the stick');
});

/**
 * Runs `check` while `image` refuses being opened for writing, as a write-protected stick does: root
 * ignores file modes, so for root the file is made immutable (EPERM) for that time.
 */
async function writeProtected(image: string, check: () => Promise<unknown>): Promise<void> {
  const root = process.getuid?.() === 0;
  await (root ? run('chattr', ['+i', image]) : chmod(image, 0o444));
  try {
    await check();
  } finally {
    await (root ? run('chattr', ['-i', image]) : chmod(image, 0o644));
  }
}

t.test('a write-protected stick refuses the file, says so and is left as it was', async (t) => {
  const dir = t.testdir();
  const image = await fatImage(dir, '1M');
  const source = join(dir, 'export.attache');
  await writeFile(source, randomBytes(1000));
  const before = await readFile(image);
  await writeProtected(image, () =>
    t.rejects(copyToStick(image, source, 'a.attache'), {
      code: 'ATTACHE_STICK_REFUSED',
      message: /is read-only \((EPERM|EACCES)\)/,
    }),
  );
  t.same(await readFile(image), before, 'the stick is unchanged');
});

t.test('a stick that fails the write keeps nothing of the file', async (t) => {
  const dir = t.testdir();
  // A root folder of 16 entries: four long names fill it while the stick has room.
  const image = await fatImage(dir, '1M', '-r', '16');
  const source = join(dir, 'export.attache');
  await writeFile(source, randomBytes(1000));
  for (let i = 1; i <= 4; i++) await copyToStick(image, source, `a-quite-long-file-name-number-${i}.attache`);
  await t.rejects(copyToStick(image, source, 'a-quite-long-file-name-number-5.attache'), {
    code: 'ATTACHE_STICK_REFUSED',
    message: /refused the file: mcopy failed/,
  });
  t.equal((await stickFiles(image)).length, 4, 'the files there before, nothing more');
});
