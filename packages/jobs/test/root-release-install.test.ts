// The root side of a software update (installReleaseAsRoot, run by attache-release-install@.service):
// everything the service hands over is checked again, the bundle is unpacked with files and
// directories only, and a refusal changes nothing. In-process here, on real trees and real
// tar.gz bundles; test/release-install.test.ts runs the image's bundled installer as root.
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  extractBundle,
  installReleaseAsRoot,
  type ReleaseInstallAnswer,
  type RootReleaseInstallOptions,
  readOwnFile,
  signJobDocument,
} from '@attache/jobs';
import t, { type Test } from 'tap';

const thing = 'gw-root-1';
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const now = Date.parse('2026-12-05T12:00:00Z');

interface Entry {
  name: string;
  type?: string;
  content?: string | Buffer;
  mode?: number;
  link?: string;
  /** The size field as written, instead of the content's size. */
  sizeField?: string;
}

/** One ustar header block. */
function header(entry: Entry, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(entry.name, 0, 100, 'utf8');
  h.write(`${(entry.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(entry.sizeField ?? `${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(entry.type ?? '0', 156, 'latin1');
  h.write(entry.link ?? '', 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A tar.gz of `entries`, made by hand (GNU tar will not write some of them). */
function tarGz(entries: Entry[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? '');
    parts.push(header(entry, content.length), content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The signed manifest and signature of a software update of `bundle` as release `version`. */
function signed(
  version: string,
  bundle: Buffer,
  options: {
    key?: KeyObject;
    target?: { thing: string } | { group: string };
    expiresAt?: number;
    rollback?: boolean;
    operation?: string;
  } = {},
) {
  const document = signJobDocument(
    {
      schemaVersion: 2,
      operation: (options.operation ?? 'software-update') as 'software-update',
      version,
      artifact: { sha256: sha256(bundle), size: bundle.length, url: 'https://example.invalid/b.tgz' },
    } as never,
    options.key ?? privateKey,
    {
      target: options.target ?? { thing },
      expiresAt: new Date(options.expiresAt ?? now + 3_600_000),
      ...(options.rollback === undefined ? {} : { rollback: options.rollback }),
    },
  );
  return {
    jobId: `sw-${version}`,
    executionNumber: 1,
    manifest: document.manifest,
    signature: document.signature,
  };
}

/** The bytes the service sends: the request line, then the bundle, in small pieces. */
function request(line: unknown, bundle: Buffer): Readable {
  const text = typeof line === 'string' ? line : `${JSON.stringify(line)}\n`;
  const all = Buffer.concat([Buffer.from(text), bundle]);
  const pieces: Buffer[] = [];
  for (let at = 0; at < all.length; at += 4096) pieces.push(all.subarray(at, at + 4096));
  return Readable.from(pieces);
}

/** A box running the image's release 1.0.0 (in the store, linked from the install root). */
async function box(t: Test) {
  const dir = t.testdir({
    store: { '1.0.0': { 'bin.js': '', '.release.json': '{"installedAt":"image"}' } },
    root: { releases: {} },
  });
  const root = join(dir, 'root');
  const store = join(dir, 'store');
  await symlink(join(store, '1.0.0'), join(root, 'releases', '1.0.0'));
  await symlink('releases/1.0.0', join(root, 'current'));
  const options: RootReleaseInstallOptions = {
    root,
    store,
    publicKeyPem,
    thingName: thing,
    thingGroups: ['ward4'],
    now: () => now,
  };
  const install = (line: unknown, bundle: Buffer) => installReleaseAsRoot(request(line, bundle), options);
  return { dir, root, store, options, install };
}

/** Every path under `dir` with its kind, mode or link target: what a refusal must leave alone. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, name);
    const info = await lstat(path);
    out.push(
      info.isSymbolicLink()
        ? `${name} -> ${await readlink(path)}`
        : `${name} ${(info.mode & 0o7777).toString(8)}`,
    );
  }
  return out;
}

const release = (version: string) =>
  tarGz([
    { name: './', type: '5', mode: 0o755 },
    { name: './package.json', content: JSON.stringify({ version }) },
    { name: './packages/cli/dist/', type: '5' },
    { name: './packages/cli/dist/bin.js', content: `// ${version}\n`, mode: 0o4775 },
  ]);

t.test('a signed release is installed in the store, linked, and current switched', async (t) => {
  const { root, store, install } = await box(t);
  const bundle = release('1.1.0');
  const answer = await install(signed('1.1.0', bundle), bundle);
  t.same(answer, { ok: true, version: '1.1.0', release: 'releases/1.1.0', previous: 'releases/1.0.0' });
  t.equal(await readlink(join(root, 'current')), 'releases/1.1.0');
  t.equal(await readlink(join(root, 'previous')), 'releases/1.0.0');
  t.equal(await readlink(join(root, 'releases', '1.1.0')), join(store, '1.1.0'));
  t.equal(await readFile(join(root, 'current', 'packages/cli/dist/bin.js'), 'utf8'), '// 1.1.0\n');
  t.equal(
    (await stat(join(store, '1.1.0', 'packages/cli/dist/bin.js'))).mode & 0o7777,
    0o755,
    'executable, no setuid, no group write',
  );
  t.equal((await stat(join(store, '1.1.0', 'package.json'))).mode & 0o7777, 0o644);
  t.equal((await stat(join(store, '1.1.0'))).mode & 0o7777, 0o755);
  const marker = JSON.parse(await readFile(join(store, '1.1.0', '.release.json'), 'utf8'));
  t.equal(marker.sha256, sha256(bundle), 'the marker names the bundle it came from');
  t.same((await readdir(store)).sort(), ['1.0.0', '1.1.0'], 'nothing temporary left');

  t.same(await install(signed('1.1.0', bundle), bundle), {
    ok: true,
    version: '1.1.0',
    release: 'releases/1.1.0',
    note: 'already running',
  });
  const next = release('1.2.0');
  t.match(await install(signed('1.2.0', next), next), { ok: true, previous: 'releases/1.1.0' });
  const third = release('1.3.0');
  t.match(await install(signed('1.3.0', third), third), { ok: true, previous: 'releases/1.2.0' });
  t.same(
    (await readdir(store)).sort(),
    ['1.0.0', '1.2.0', '1.3.0'],
    "older releases pruned, the image's kept",
  );
  t.same((await readdir(join(root, 'releases'))).sort(), ['1.0.0', '1.2.0', '1.3.0']);
});

t.test('a job signed for a group of the box, and a rollback signed as one, are installed', async (t) => {
  const { root, install } = await box(t);
  const bundle = release('1.4.0');
  t.match(await install(signed('1.4.0', bundle, { target: { group: 'ward4' } }), bundle), { ok: true });
  const old = release('0.9.0');
  t.match(await install(signed('0.9.0', old, { rollback: true }), old), {
    ok: true,
    previous: 'releases/1.4.0',
  });
  t.equal(await readlink(join(root, 'current')), 'releases/0.9.0');
});

const refusals: [string, (bundle: Buffer) => { line: unknown; bundle?: Buffer }, RegExp][] = [
  [
    'another key',
    (b) => ({
      line: signed('1.1.0', b, { key: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey }),
    }),
    /ATTACHE_SIGNATURE: bad signature/,
  ],
  [
    'another thing',
    (b) => ({ line: signed('1.1.0', b, { target: { thing: 'gw-other' } }) }),
    /ATTACHE_JOB_REFUSED: .*signed for thing gw-other/,
  ],
  [
    'another group',
    (b) => ({ line: signed('1.1.0', b, { target: { group: 'ward9' } }) }),
    /ATTACHE_JOB_REFUSED: .*thing group ward9/,
  ],
  [
    'expired',
    (b) => ({ line: signed('1.1.0', b, { expiresAt: now - 1 }) }),
    /ATTACHE_JOB_REFUSED: the job expired/,
  ],
  [
    'a downgrade',
    (b) => ({ line: signed('0.9.0', b) }),
    /ATTACHE_JOB_REFUSED: downgrade refused: 0\.9\.0 is older than the running 1\.0\.0/,
  ],
  [
    'a config update',
    (b) => ({ line: signed('1.1.0', b, { operation: 'config-update' }) }),
    /ATTACHE_MALFORMED: the manifest is for a config-update/,
  ],
  [
    'a version that is a path',
    (b) => ({ line: signed('../../etc', b) }),
    /ATTACHE_MALFORMED: .*not a semantic version/,
  ],
  [
    'other bytes',
    (b) => ({ line: signed('1.1.0', b), bundle: Buffer.from(b).fill(1, 40, 41) }),
    /ATTACHE_MALFORMED: wrong hash/,
  ],
  [
    'fewer bytes',
    (b) => ({ line: signed('1.1.0', b), bundle: b.subarray(0, 100) }),
    /ATTACHE_MALFORMED: wrong size: 100 bytes/,
  ],
  [
    'more bytes',
    (b) => ({ line: signed('1.1.0', b), bundle: Buffer.concat([b, Buffer.alloc(10)]) }),
    /ATTACHE_MALFORMED: wrong size: more than/,
  ],
  ['no JSON', () => ({ line: 'install 1.1.0\n' }), /ATTACHE_MALFORMED: the install request is not JSON/],
  [
    'no signature',
    () => ({ line: { jobId: 'x', executionNumber: 1, manifest: '{}' } }),
    /ATTACHE_MALFORMED: .*lacks/,
  ],
  [
    'no request line',
    () => ({ line: '{"jobId":', bundle: Buffer.alloc(0) }),
    /ATTACHE_MALFORMED: .*ended before its first line/,
  ],
  [
    'a request line too long',
    () => ({ line: 'x'.repeat(70_000) }),
    /ATTACHE_MALFORMED: the install request is too long/,
  ],
];

for (const [what, make, reason] of refusals) {
  t.test(`refused, nothing changed: ${what}`, async (t) => {
    const { root, store, install } = await box(t);
    const good = release('1.1.0');
    const { line, bundle } = make(good);
    const before = [...(await tree(root)), ...(await tree(store))];
    const answer = await install(line, bundle ?? good);
    t.equal(answer.ok, false);
    const { code, reason: why } = answer as Extract<ReleaseInstallAnswer, { ok: false }>;
    t.match(`${code}: ${why}`, reason);
    t.notOk('retry' in answer, 'the job is REJECTED, not retried');
    t.same(
      [...(await tree(root)), ...(await tree(store))],
      before,
      'the install root and the store are as they were',
    );
  });
}

const unsafeBundles: [string, Entry[], RegExp][] = [
  ['a symlink', [{ name: './lib', type: '2', link: '/etc' }], /a symlink \("\.\/lib"\)/],
  [
    'a hard link',
    [
      { name: './x', content: 'x' },
      { name: './shadow', type: '1', link: '/etc/shadow' },
    ],
    /a hard link/,
  ],
  ['a device', [{ name: './null', type: '3' }], /a character device/],
  ['a FIFO', [{ name: './fifo', type: '6' }], /a FIFO/],
  [
    'a path with ..',
    [{ name: './../../evil.js', content: 'x' }],
    /a path leading out of the release \("\.\/\.\.\/\.\.\/evil\.js"\)/,
  ],
  ['an absolute path', [{ name: '/etc/cron.d/x', content: 'x' }], /an absolute path/],
  [
    'a file twice',
    [
      { name: 'a', content: '1' },
      { name: './a', content: '2' },
    ],
    /"\.\/a" twice/,
  ],
  [
    'a file and a directory of one name',
    [
      { name: 'a', content: '1' },
      { name: 'a/b', content: '2' },
    ],
    /"a" as both a file and a directory/,
  ],
  [
    'a directory, then a file of its name',
    [
      { name: 'd', type: '5' },
      { name: 'd', content: '2' },
    ],
    /"d" twice/,
  ],
  ['a file named .', [{ name: './', content: 'x' }], /a file named/],
  ['an unknown type', [{ name: 'v', type: 'V' }], /an entry of type "V"/],
];

for (const [what, entries, reason] of unsafeBundles) {
  t.test(`a signed bundle holding ${what} is refused, nothing changed`, async (t) => {
    const { root, store, install } = await box(t);
    const bundle = tarGz([{ name: './package.json', content: '{}' }, ...entries]);
    const before = [...(await tree(root)), ...(await tree(store))];
    const answer = (await install(signed('1.1.0', bundle), bundle)) as Extract<
      ReleaseInstallAnswer,
      { ok: false }
    >;
    t.equal(answer.code, 'ATTACHE_UNSAFE_FILE');
    t.match(answer.reason, reason);
    t.same(
      [...(await tree(root)), ...(await tree(store))],
      before,
      'no partial release left, current unchanged',
    );
  });
}

t.test('damaged archives are refused', async (t) => {
  const dir = t.testdir({ out: {} });
  const cases: [string, Buffer, RegExp][] = [
    ['not gzip', Buffer.from('plain text, not a tar.gz'), /not gzip-compressed/],
    ['no end blocks', tarGz([{ name: 'a', content: 'x' }], false), /no end-of-archive blocks/],
    [
      'cut in a file',
      gzipSync(Buffer.concat([header({ name: 'a' }, 2000), Buffer.alloc(100)])),
      /ends in the middle of a file/,
    ],
    ['cut in a header', gzipSync(Buffer.alloc(300, 1)), /ends in the middle of an entry/],
    [
      'a wrong checksum',
      gzipSync(Buffer.concat([Buffer.from(header({ name: 'a' }, 0)).fill(0x41, 0, 1), Buffer.alloc(1024)])),
      /checksum is wrong/,
    ],
    ['a size that is no number', tarGz([{ name: 'a', sizeField: '9\0' }]), /size field/],
    [
      'a bad pax record',
      tarGz([
        { name: 'p', type: 'x', content: '99 path=a\n' },
        { name: 'a', content: '' },
      ]),
      /pax header record/,
    ],
    [
      'a pax record without =',
      tarGz([
        { name: 'p', type: 'x', content: '9 pathab\n' },
        { name: 'a', content: '' },
      ]),
      /pax header record/,
    ],
    [
      'a header cut after a long name',
      gzipSync(header({ name: '././@LongLink', type: 'L' }, 600)),
      /ends in the middle of an entry|ends in a header/,
    ],
  ];
  for (const [what, bytes, reason] of cases) {
    const archive = join(dir, `${what}.tgz`);
    await writeFile(archive, bytes);
    const into = join(dir, 'out', what);
    await mkdir(into);
    await t.rejects(extractBundle(archive, into), { message: reason }, what);
  }
  await t.rejects(
    extractBundle(join(dir, 'missing.tgz'), join(dir, 'out')),
    { code: 'ENOENT' },
    'a missing file',
  );
});

t.test("GNU tar's own bundles: long names (GNU and pax), and a global pax header", async (t) => {
  const dir = t.testdir({ tree: {}, gnu: {}, pax: {}, global: {} });
  const deep = join('a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
  await mkdir(join(dir, 'tree', deep), { recursive: true });
  await writeFile(join(dir, 'tree', deep, 'file.js'), 'long\n');
  await writeFile(join(dir, 'tree', 'run.sh'), '#!/bin/sh\n');
  await chmod(join(dir, 'tree', 'run.sh'), 0o700);
  for (const format of ['gnu', 'pax']) {
    const archive = join(dir, `${format}.tgz`);
    execFileSync('tar', [`--format=${format}`, '-czf', archive, '-C', join(dir, 'tree'), '.']);
    const report = await extractBundle(archive, join(dir, format));
    t.same(report, { files: 2, directories: 3, bytes: 15 }, format);
    t.equal(await readFile(join(dir, format, deep, 'file.js'), 'utf8'), 'long\n');
    t.equal((await stat(join(dir, format, 'run.sh'))).mode & 0o777, 0o755);
  }
  const global = join(dir, 'global.tgz');
  await writeFile(
    global,
    tarGz([
      { name: 'g', type: 'g', content: '16 comment=abc\n' },
      { name: 'a', content: 'x' },
    ]),
  );
  t.same(await extractBundle(global, join(dir, 'global')), { files: 1, directories: 0, bytes: 1 });
});

t.test('an install that fails on the system (not the job) asks to be retried', async (t) => {
  const { dir, options } = await box(t);
  await writeFile(join(dir, 'not-a-dir'), '');
  const bundle = release('1.1.0');
  const lines: string[] = [];
  const answer = await installReleaseAsRoot(request(signed('1.1.0', bundle), bundle), {
    ...options,
    store: join(dir, 'not-a-dir', 'store'),
    log: (line) => lines.push(line),
  });
  t.match(answer, { ok: false, code: 'ATTACHE_INTERNAL', retry: true });
  t.match(lines.at(-1), /^failed: /, 'said so in the journal');
});

t.test('the key and the record are read only when nobody else may have written them', async (t) => {
  const dir = t.testdir({ trust: { 'key.pem': 'KEY' }, open: { 'key.pem': 'KEY' } });
  await chmod(join(dir, 'trust'), 0o755);
  t.equal(await readOwnFile(join(dir, 'trust', 'key.pem')), 'KEY');
  await chmod(join(dir, 'open'), 0o777);
  await t.rejects(readOwnFile(join(dir, 'open', 'key.pem')), {
    code: 'ATTACHE_UNSAFE_FILE',
    message: /mode 777/,
  });
  await chmod(join(dir, 'trust', 'key.pem'), 0o666);
  await t.rejects(readOwnFile(join(dir, 'trust', 'key.pem')), { code: 'ATTACHE_UNSAFE_FILE' });
  await symlink(join(dir, 'open', 'key.pem'), join(dir, 'trust', 'link.pem'));
  await t.rejects(readOwnFile(join(dir, 'trust', 'link.pem')), { message: /a symlink/ });
});
