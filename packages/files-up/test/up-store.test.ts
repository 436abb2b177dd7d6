import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadOrCreateKeyring } from '@attache/cache';
import { openBlob, sealBlob, UpStore, type UpStoreEvent, type UpStoreLimits } from '@attache/files-up';
import { FreeTextDeidentifier } from '@attache/normalizer';
import t, { type Test } from 'tap';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const from = { source: 'folder:export', deviceId: 'vent-1', name: 'error-2026-12-04.log' };

async function opened(t: Test, limits?: UpStoreLimits) {
  const dir = t.testdir();
  const keyring = await loadOrCreateKeyring(join(dir, 'keys', 'cache.key'));
  const path = join(dir, 'files-up');
  let now = Date.parse('2026-12-04T10:00:00Z');
  const store = new UpStore({ path, keyring, ...(limits ? { limits } : {}), now: () => (now += 1000) });
  await store.open();
  const events: UpStoreEvent[] = [];
  store.on('event', (e) => events.push(e));
  return { store, path, keyring, events };
}

t.test(
  'a captured file is sealed on disk, listed with its metadata and read back byte-identical',
  async (t) => {
    const { store, path, events } = await opened(t);
    const log = Buffer.concat([
      Buffer.from('PATIENT SMITH^JOHN alarm HIGH PRESSURE\n'),
      randomBytes(200_000),
    ]);
    async function* chunks() {
      for (let i = 0; i < log.length; i += 7000) yield log.subarray(i, i + 7000);
    }
    const result = await store.capture(chunks(), from);
    t.match(result, {
      stored: true,
      file: { sha256: sha(log), size: log.length, ...from, capturedAt: /^2026-12-04T/ },
    });
    const onDisk = await readFile(join(path, 'objects', sha(log)));
    t.equal(onDisk.indexOf('SMITH'), -1, 'the content is not on disk in clear');
    const meta = await readFile(join(path, 'objects', `${sha(log)}.meta`));
    t.equal(meta.indexOf('error-2026'), -1, 'nor is its name');
    t.equal((await stat(join(path, 'objects', sha(log)))).mode & 0o777, 0o600);
    const [file] = await store.list();
    t.same(file, result.stored ? result.file : undefined);
    if (!file) return;
    t.same(await store.read(file), log, 'read gives the bytes back');
    t.same(await store.read(file, 65_000, 140_000), log.subarray(65_000, 140_000), 'and any range of them');
    t.same(
      events.map((e) => e.type),
      ['file.captured'],
    );
    t.same(store.counts, { captured: 1, duplicates: 0, uploaded: 0, refused: 0, dropped: 0 });
  },
);

t.test('a file seen twice is stored once, also after its upload and a restart', async (t) => {
  const { store, path, keyring, events } = await opened(t);
  const content = Buffer.from('service report\n'.repeat(100));
  await store.capture(content, from);
  t.match(await store.capture(content, { ...from, source: 'usb', name: 'copy.log' }), {
    stored: false,
    sha256: sha(content),
  });
  t.equal((await store.list()).length, 1);
  const [file] = await store.list();
  if (!file) return;
  await store.uploaded(file, 'vent-1/x');
  t.same(await store.list(), [], 'an uploaded file leaves the box');
  const again = new UpStore({ path, keyring });
  await again.open();
  t.match(await again.capture(content, from), { stored: false }, 'its hash is remembered');
  t.same(
    again.counts,
    { captured: 1, duplicates: 2, uploaded: 1, refused: 0, dropped: 0 },
    'counters survive a restart',
  );
  t.same(
    events.map((e) => e.type),
    ['file.captured', 'file.duplicate', 'file.uploaded'],
  );
});

t.test(
  'refuse: a file that does not fit is not taken, and a file larger than maxFileBytes never is',
  async (t) => {
    const { store, events } = await opened(t, {
      maxFiles: 2,
      maxBytes: 3000,
      maxFileBytes: 2000,
      whenFull: 'refuse',
    });
    await store.capture(Buffer.alloc(1500, 1), from);
    await t.rejects(store.capture(Buffer.alloc(2001, 2), from), { code: 'ATTACHE_CACHE_FULL' });
    await t.rejects(store.capture(Buffer.alloc(1501, 3), from), { code: 'ATTACHE_CACHE_FULL' });
    await store.capture(Buffer.alloc(1500, 4), from);
    await t.rejects(
      store.capture(Buffer.alloc(1, 5), from),
      { code: 'ATTACHE_CACHE_FULL' },
      'maxFiles holds',
    );
    t.equal((await store.list()).length, 2);
    t.same(
      events.filter((e) => e.type === 'file.refused').map((e) => e.type === 'file.refused' && e.reason),
      ['too-large', 'full', 'full'],
    );
    t.equal(store.counts.refused, 3);
  },
);

t.test('drop-oldest: the oldest files are dropped to make room, each with an event', async (t) => {
  const { store, events } = await opened(t, { maxFiles: 10, maxBytes: 3000, whenFull: 'drop-oldest' });
  const a = Buffer.alloc(1000, 1);
  const b = Buffer.alloc(1000, 2);
  const c = Buffer.alloc(1500, 3);
  for (const f of [a, b, c]) await store.capture(f, from);
  t.same(
    (await store.list()).map((f) => f.sha256),
    [sha(b), sha(c)],
    'the oldest went',
  );
  t.match(
    events.find((e) => e.type === 'file.dropped'),
    { file: { sha256: sha(a) } },
  );
  await t.rejects(
    store.capture(Buffer.alloc(3001, 4), from),
    { code: 'ATTACHE_CACHE_FULL' },
    'too large for an empty store',
  );
  t.equal((await store.list()).length, 2, 'nothing dropped for a file that can never fit');
  t.equal(store.counts.dropped, 1);
});

t.test('a changed byte on disk is refused, never returned', async (t) => {
  const { store, path } = await opened(t);
  const content = randomBytes(100_000);
  await store.capture(content, from);
  const [file] = await store.list();
  if (!file) return;
  const object = join(path, 'objects', file.sha256);
  const bytes = await readFile(object);
  bytes[70_000] = (bytes[70_000] ?? 0) ^ 1;
  await writeFile(object, bytes);
  await t.rejects(store.read(file), { code: 'ATTACHE_CACHE_TAMPERED' });
  t.same(await store.read(file, 0, 1000), content.subarray(0, 1000), 'an untouched chunk still reads');
  await writeFile(join(path, 'objects', `${file.sha256}.meta`), 'garbage');
  t.same(await store.list(), [], 'a file whose metadata fails authentication is skipped');
});

t.test('an empty file and an unfinished capture after a crash', async (t) => {
  const { store, path, keyring } = await opened(t);
  const result = await store.capture(Buffer.alloc(0), from);
  t.match(result, { stored: true, file: { size: 0 } });
  if (result.stored) t.same(await store.read(result.file), Buffer.alloc(0));
  await writeFile(join(path, 'tmp', 'half'), 'x');
  const again = new UpStore({ path, keyring });
  await again.open();
  t.same(await readdir(join(path, 'tmp')), [], 'leftovers of a crash are removed');
});

t.test('options are checked', async (t) => {
  const keyring = await loadOrCreateKeyring(join(t.testdir(), 'k'));
  t.throws(() => new UpStore({ path: '', keyring }), TypeError);
  t.throws(
    () => new UpStore({ path: 'x', keyring, limits: { maxFiles: 0, maxBytes: 1, whenFull: 'refuse' } }),
    TypeError,
  );
  t.throws(
    () => new UpStore({ path: 'x', keyring, limits: { maxFiles: 1, maxBytes: 1, whenFull: 'x' as never } }),
    TypeError,
  );
});

t.test(
  'a device set to de-identify: its text logs are cleaned line by line before they are stored',
  async (t) => {
    const dir = t.testdir();
    const keyring = await loadOrCreateKeyring(join(dir, 'key'));
    const rule = new FreeTextDeidentifier();
    const store = new UpStore({
      path: join(dir, 'files-up'),
      keyring,
      deidentify: { deviceIds: ['vent-1'], clean: (line) => rule.clean(line) },
    });
    await store.open();
    const events: UpStoreEvent[] = [];
    store.on('event', (e) => events.push(e));
    const log = 'E42 occlusion, called Dr Smith\r\nPatient MRN 12345678 ok\r\nno newline at the end';
    async function* split() {
      for (let i = 0; i < log.length; i += 5) yield Buffer.from(log.slice(i, i + 5));
    }
    const result = await store.capture(split(), from);
    if (!result.stored) {
      t.fail('not stored');
      return;
    }
    const text = (await store.read(result.file)).toString('utf8');
    t.notOk(/Smith|12345678/.test(text), 'names and identifiers are gone');
    t.match(
      text,
      /^E42 occlusion, called Dr \[redacted\]\r\n.*\r\nno newline at the end$/s,
      'the rest and the line endings are kept',
    );
    await t.rejects(
      store.capture(Buffer.from([0x41, 0, 0x42]), from),
      { code: 'ATTACHE_MALFORMED' },
      'binary is refused',
    );
    t.match(events.at(-1), { type: 'file.refused', reason: 'not-text' });
    const other = await store.capture(Buffer.from([0x41, 0, 0x42]), { ...from, deviceId: 'pump-2' });
    t.match(other, { stored: true }, 'other devices upload sealed as it was');
    t.same(await readdir(join(dir, 'files-up', 'tmp')), []);
  },
);

t.test('a file sealed with a key the keyring lacks, or cut short, is refused', async (t) => {
  const { store, path } = await opened(t);
  const content = randomBytes(70_000);
  await store.capture(content, from);
  const [file] = await store.list();
  if (!file) return;
  const otherKeyring = await loadOrCreateKeyring(join(path, '..', 'other.key'));
  const stranger = { currentId: otherKeyring.currentId, indexId: otherKeyring.indexId, key: () => undefined };
  const blind = new UpStore({ path, keyring: stranger });
  await t.rejects(blind.read(file), { code: 'ATTACHE_CACHE_KEY' });
  const object = join(path, 'objects', file.sha256);
  await writeFile(object, (await readFile(object)).subarray(0, 20));
  await t.rejects(store.read(file), { code: 'ATTACHE_CACHE_TAMPERED' });
  await writeFile(object, 'XXXXX');
  await t.rejects(store.read(file), { code: 'ATTACHE_CACHE_TAMPERED' });
  t.throws(() => openBlob(Buffer.from('ATUP1'), otherKeyring), { code: 'ATTACHE_CACHE_TAMPERED' });
  t.throws(() => sealBlob(Buffer.alloc(70_000), otherKeyring), TypeError);
});
