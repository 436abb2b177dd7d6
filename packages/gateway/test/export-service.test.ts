import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import t from 'tap';
import { placeFile, placeStream, progressBar, stageExport } from '../src/export-service.js';

t.test('placeFile never replaces a file unless forced', async (t) => {
  const dir = t.testdir({ from: 'new content', out: 'keep me' });
  await t.rejects(placeFile(join(dir, 'from'), join(dir, 'out'), false), { code: 'ATTACHE_FILE_EXISTS' });
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'keep me');
  await placeFile(join(dir, 'from'), join(dir, 'out'), true);
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'new content');
  await placeFile(join(dir, 'from'), join(dir, 'fresh'), false);
  t.equal(await readFile(join(dir, 'fresh'), 'utf8'), 'new content');
  await t.rejects(placeFile(join(dir, 'missing'), join(dir, 'other'), false), { code: 'ENOENT' });
});

t.test('the progress bar draws on a terminal only', async (t) => {
  const written: string[] = [];
  const tty = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  const bar = progressBar(tty);
  bar.update({ records: 500, total: 1000 });
  bar.update({ records: 0, total: 0 });
  bar.done();
  t.match(written[0], /\[#{15} {15}\] 500\/1000 records/);
  t.match(written[1], /\[#{30}\] 0\/0 records/);
  t.equal(written[2], '\n');
  const piped: string[] = [];
  const pipe = progressBar({
    isTTY: false,
    write: (s: string) => piped.push(s),
  } as unknown as NodeJS.WriteStream);
  pipe.update({ records: 1, total: 2 });
  pipe.done();
  t.same(piped, [], 'nothing when stderr is not a terminal');
});

t.test('a control-socket export request is checked before anything is written', async (t) => {
  const dir = t.testdir();
  await writeFile(join(dir, 'x'), '');
  const cache = new LevelCache({
    path: join(dir, 'cache'),
    keyring: await loadOrCreateKeyring(join(dir, 'k')),
  });
  await cache.open();
  t.teardown(() => cache.close());
  const paths = { dataDir: dir, signingKey: join(dir, 'signing.key') };
  await t.rejects(
    stageExport(cache, paths, undefined, () => undefined),
    TypeError,
    'no recipient',
  );
  await t.rejects(
    stageExport(cache, paths, { recipient: 'pem', since: 'yesterday' }, () => undefined),
    /"since" must be a date/,
  );
});

t.test('placeStream puts nothing in place until the writer has succeeded', async (t) => {
  const dir = t.testdir({ out: 'keep me' });
  const failed = Promise.reject(new Error('the writer died'));
  await t.rejects(
    placeStream(Readable.from([Buffer.from('half')]), join(dir, 'out'), true, failed),
    /the writer died/,
  );
  t.equal(await readFile(join(dir, 'out'), 'utf8'), 'keep me', 'not replaced, even with force');
  t.same(await readdir(dir), ['out'], 'no temporary file left');
  await placeStream(
    Readable.from([Buffer.from('who'), Buffer.from('le')]),
    join(dir, 'fresh'),
    false,
    Promise.resolve(),
  );
  t.equal(await readFile(join(dir, 'fresh'), 'utf8'), 'whole');
  t.equal((await stat(join(dir, 'fresh'))).mode & 0o777, 0o600, 'owner-only');
});
