import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LevelCache, loadOrCreateKeyring, rotateKeyring } from '@attache/cache';
import t from 'tap';

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

t.test('a missing key file is created 0600 in a 0700 directory, with one random 256-bit key', async (t) => {
  const keyPath = join(t.testdir(), 'data', 'keys', 'cache.key');
  const keyring = await loadOrCreateKeyring(keyPath);
  t.equal(await mode(keyPath), 0o600, 'key file is owner-only');
  t.equal(await mode(dirname(keyPath)), 0o700, 'key directory is owner-only');
  const file = JSON.parse(await readFile(keyPath, 'utf8'));
  t.same(Object.keys(file), ['version', 'current', 'keys']);
  t.match(file, { version: 1, current: 'k1' });
  t.equal(Buffer.from(file.keys.k1, 'base64').length, 32);
  t.equal(keyring.currentId, 'k1');
  t.equal(keyring.indexId, 'k1');
  t.same(keyring.key('k1'), Buffer.from(file.keys.k1, 'base64'));
  t.equal(keyring.key('k2'), undefined);
  t.same(await readdir(dirname(keyPath)), ['cache.key'], 'no temporary file is left');

  const again = await loadOrCreateKeyring(keyPath);
  t.same(again.key('k1'), keyring.key('k1'), 'loading again gives the same key');
  const other = await loadOrCreateKeyring(join(t.testdirName, 'other.key'));
  t.notSame(other.key('k1'), keyring.key('k1'), 'another file, another random key');
});

t.test('a key file readable by group or others is refused with ATTACHE_CACHE_KEY', async (t) => {
  const keyPath = join(t.testdir(), 'cache.key');
  await loadOrCreateKeyring(keyPath);
  for (const unsafe of [0o644, 0o640, 0o604, 0o620]) {
    await chmod(keyPath, unsafe);
    await t.rejects(loadOrCreateKeyring(keyPath), { code: 'ATTACHE_CACHE_KEY' }, unsafe.toString(8));
    await t.rejects(rotateKeyring(keyPath), { code: 'ATTACHE_CACHE_KEY' }, `rotate ${unsafe.toString(8)}`);
  }
  await chmod(keyPath, 0o400);
  t.equal((await loadOrCreateKeyring(keyPath)).currentId, 'k1', 'read-only for the owner is fine');
});

t.test('a malformed key file is refused with ATTACHE_CACHE_KEY', async (t) => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const cases: Record<string, string> = {
    'not JSON': '{"version":1,',
    null: 'null',
    'wrong version': JSON.stringify({ version: 2, current: 'k1', keys: { k1: key } }),
    'no keys': JSON.stringify({ version: 1, current: 'k1', keys: {} }),
    'current not among keys': JSON.stringify({ version: 1, current: 'k2', keys: { k1: key } }),
    'short key': JSON.stringify({
      version: 1,
      current: 'k1',
      keys: { k1: Buffer.alloc(16).toString('base64') },
    }),
    'key not a string': JSON.stringify({ version: 1, current: 'k1', keys: { k1: 42 } }),
    'bad id': JSON.stringify({ version: 1, current: 'k 1', keys: { 'k 1': key } }),
  };
  const dir = t.testdir();
  for (const [name, text] of Object.entries(cases)) {
    const keyPath = join(dir, `${name.replaceAll(' ', '-')}.key`);
    await writeFile(keyPath, text, { mode: 0o600 });
    await t.rejects(loadOrCreateKeyring(keyPath), { code: 'ATTACHE_CACHE_KEY' }, name);
    t.equal(await readFile(keyPath, 'utf8'), text, `${name}: the file is left as it was`);
  }
  await t.rejects(loadOrCreateKeyring(''), TypeError);
  await t.rejects(rotateKeyring(''), TypeError);
});

t.test('a key file that cannot be created or read is ATTACHE_CACHE_KEY', async (t) => {
  const dir = t.testdir({ 'plain-file': 'x', 'a-dir.key': {} });
  await t.rejects(loadOrCreateKeyring(join(dir, 'plain-file', 'cache.key')), { code: 'ATTACHE_CACHE_KEY' });
  await chmod(join(dir, 'a-dir.key'), 0o700);
  await t.rejects(loadOrCreateKeyring(join(dir, 'a-dir.key')), { code: 'ATTACHE_CACHE_KEY' });
  await t.rejects(rotateKeyring(join(dir, 'missing.key')), { code: 'ATTACHE_CACHE_KEY' });
});

t.test('rotation adds a key, makes it current, keeps the old ones, and keeps the file 0600', async (t) => {
  const keyPath = join(t.testdir(), 'keys', 'cache.key');
  const first = await loadOrCreateKeyring(keyPath);
  t.equal(await rotateKeyring(keyPath), 'k2');
  t.equal(await rotateKeyring(keyPath), 'k3');
  const keyring = await loadOrCreateKeyring(keyPath);
  t.equal(keyring.currentId, 'k3');
  t.equal(keyring.indexId, 'k1', 'the index key stays the first one');
  t.same(keyring.key('k1'), first.key('k1'), 'old keys stay');
  t.equal(keyring.key('k2')?.length, 32);
  t.notSame(keyring.key('k3'), keyring.key('k2'));
  t.equal(await mode(keyPath), 0o600);
  t.same(await readdir(dirname(keyPath)), ['cache.key'], 'no temporary file is left');
  t.equal(first.currentId, 'k1', 'a keyring already loaded is a snapshot');
});

t.test('LevelCache refuses a keyring without usable keys (TypeError)', async (t) => {
  const path = t.testdir();
  const key = Buffer.alloc(32, 1);
  const bad = [
    undefined,
    { currentId: 'k1', indexId: 'k1', key: () => undefined },
    { currentId: 'k1', indexId: 'k1', key: () => Buffer.alloc(16) },
    { currentId: 'k'.repeat(65), indexId: 'k1', key: () => key },
    { currentId: 'k1', indexId: 'k0', key: (id: string) => (id === 'k1' ? key : undefined) },
  ];
  for (const keyring of bad) {
    t.throws(() => new LevelCache({ path, keyring: keyring as never }), TypeError);
  }
});
