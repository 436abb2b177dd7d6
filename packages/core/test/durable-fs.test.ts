import { lstat, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { mkdirDurably, removeDurably, writeDurably } from '../src/index.js';

t.test('a durable write replaces the whole file with exactly the mode asked for', async (t) => {
  const dir = t.testdir({ 'config.json': 'old', tmp: {} });
  await writeDurably(join(dir, 'config.json'), 'new');
  t.equal(await readFile(join(dir, 'config.json'), 'utf8'), 'new');
  t.equal((await lstat(join(dir, 'config.json'))).mode & 0o777, 0o600, 'private by default');
  const umask = process.umask(0o077);
  try {
    await writeDurably(join(dir, 'state.json'), '{}', { mode: 0o644, tmpDir: join(dir, 'tmp') });
  } finally {
    process.umask(umask);
  }
  t.equal((await lstat(join(dir, 'state.json'))).mode & 0o777, 0o644, 'the umask does not narrow it');
  t.same(await readdir(join(dir, 'tmp')), [], 'no temporary file is left behind');
});

t.test('a write that fails leaves no temporary file and rejects with the fs error', async (t) => {
  const dir = t.testdir({});
  await t.rejects(writeDurably(join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
  await writeFile(join(dir, 'plain'), 'x');
  await t.rejects(writeDurably(join(dir, 'f'), 'x', { tmpDir: join(dir, 'plain') }), { code: 'ENOTDIR' });
  t.same(await readdir(dir), ['plain']);
});

t.test('mkdirDurably makes every missing level with its mode and is a no-op when it exists', async (t) => {
  const dir = t.testdir({});
  const deep = join(dir, 'a', 'b', 'c');
  await mkdirDurably(deep);
  t.equal((await stat(deep)).mode & 0o777, 0o700);
  await mkdirDurably(deep, 0o755);
  t.equal((await stat(deep)).mode & 0o777, 0o700, 'an existing directory keeps its mode');
  await mkdirDurably(join(dir, 'releases'), 0o755);
  t.equal((await stat(join(dir, 'releases'))).mode & 0o777, 0o755);
});

t.test('removeDurably deletes a file and accepts one already gone', async (t) => {
  const dir = t.testdir({ f: 'x', sub: { g: 'y' } });
  await removeDurably(join(dir, 'f'));
  await removeDurably(join(dir, 'f'));
  t.same(await readdir(dir), ['sub']);
  await t.rejects(removeDurably(join(dir, 'sub')), 'a directory is not a file');
});
