import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStore } from '@attache/cache';
import t, { type Test } from 'tap';
import { recordingLogger } from './fixtures/helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const content = Buffer.from('{"firmware":"pulse-ox 4.2.1","bytes":"'.padEnd(5000, 'x'));

async function opened(t: Test, logger = recordingLogger()) {
  const path = join(t.testdir(), 'files');
  const store = new FileStore({ path, logger });
  await store.open();
  return { store, path, logger };
}

t.test('put stores a file under its SHA-256; read verifies it; list and remove', async (t) => {
  const { store, path } = await opened(t);
  const stored = await store.put(content, { sha256: sha(content), size: content.length, name: 'fw.bin' });
  t.match(stored, { sha256: sha(content), size: content.length, name: 'fw.bin', addedAt: /^\d{4}-/ });
  t.same(await store.read(sha(content)), content, 'read returns the content');
  t.same(await readFile(join(path, 'objects', sha(content))), content, 'the file is named by its hash');
  t.equal((await stat(join(path, 'objects', sha(content)))).mode & 0o777, 0o600);
  t.same(await store.list(), [stored]);
  t.same(
    await store.put(content, { sha256: sha(content), size: content.length }),
    stored,
    'a second put is a no-op',
  );
  async function* chunks() {
    yield Buffer.from('ab');
    yield Buffer.from('c');
  }
  const abc = Buffer.from('abc');
  await store.put(chunks(), { sha256: sha(abc), size: 3 });
  t.equal((await store.list()).length, 2, 'a stream is stored too');
  t.equal(await store.remove(sha(content)), true);
  t.equal(await store.remove(sha(content)), false, 'removing twice is harmless');
  t.equal(await store.read(sha(content)), undefined, 'a removed file reads as missing');
  t.same(
    (await store.list()).map((f) => f.sha256),
    [sha(abc)],
  );
});

t.test('a wrong hash, short or long content is refused and nothing is kept', async (t) => {
  const { store } = await opened(t);
  const other = sha(Buffer.from('something else'));
  await t.rejects(store.put(content, { sha256: other, size: content.length }), { code: 'ATTACHE_MALFORMED' });
  await t.rejects(store.put(content.subarray(10), { sha256: sha(content), size: content.length }), {
    code: 'ATTACHE_MALFORMED',
    message: /received/,
  });
  await t.rejects(store.put(content, { sha256: sha(content), size: content.length - 1 }), {
    code: 'ATTACHE_MALFORMED',
    message: /more than/,
  });
  t.same(await store.list(), [], 'nothing stored');
  await t.rejects(store.read('ABC'), TypeError);
});

t.test('a file altered on disk is refused on read and quarantined', async (t) => {
  const { store, path, logger } = await opened(t);
  await store.put(content, { sha256: sha(content), size: content.length });
  const file = join(path, 'objects', sha(content));
  const altered = Buffer.from(content);
  altered[100] = 0x79;
  await writeFile(file, altered);
  await t.rejects(store.read(sha(content)), { code: 'ATTACHE_CACHE_TAMPERED' });
  t.equal(await store.read(sha(content)), undefined, 'it is gone from the store');
  t.equal((await readdir(join(path, 'quarantine'))).length, 1, 'kept in quarantine for forensics');
  t.ok(logger.entries.some((e) => e.level === 'error' && e.sha256 === sha(content)));
  t.same(await store.list(), []);
});

t.test('a partial download resumes where it stopped, also after reopening', async (t) => {
  const { store, path } = await opened(t);
  const expected = { sha256: sha(content), size: content.length, name: 'fw.bin' };
  const first = await store.openPartial(expected);
  t.equal(first.received, 0);
  await first.write(content.subarray(0, 2000));
  await t.rejects(first.complete(), { code: 'ATTACHE_MALFORMED' }, 'incomplete: refused, kept');
  t.same(await store.list(), [], 'not listed until complete');

  const again = new FileStore({ path });
  await again.open();
  const resumed = await again.openPartial(expected);
  t.equal(resumed.received, 2000, 'the bytes held so far survive a restart');
  await resumed.write(content.subarray(2000));
  await t.rejects(resumed.write(Buffer.from('x')), { code: 'ATTACHE_MALFORMED' }, 'nothing past the size');
  t.match(await resumed.complete(), { sha256: sha(content), name: 'fw.bin' });
  t.same(await again.read(sha(content)), content);
  t.equal((await again.openPartial(expected)).received, 0, 'a completed download leaves no partial');

  const bad = await again.openPartial({ sha256: sha(Buffer.from('zz')), size: 2 });
  await bad.write(Buffer.from('yy'));
  await t.rejects(bad.complete(), { code: 'ATTACHE_MALFORMED', message: /SHA-256/ });
  t.equal(
    (await again.openPartial({ sha256: sha(Buffer.from('zz')), size: 2 })).received,
    0,
    'a bad partial is dropped',
  );
});
