// What root accepts from the service's side: the running gateway names the export it staged, and
// root copies it onto a USB stick. A compromised service (network-facing, its own user) must not
// get root to copy or remove another file.
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  chmod,
  chown,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GatewayError, type Logger } from '@attache/core';
import { ControlServer } from '@attache/gateway';
import pino from 'pino';
import t from 'tap';
import { printable } from '../src/commands/args.js';
import { checkDelivered, openStagedExport, serviceSigningKey } from '../src/service-files.js';

const root = process.getuid?.() === 0;
const run = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
/** The service's user as root's tests play it (nobody); the test's own uid otherwise. */
const owner = root ? 65534 : (process.getuid?.() ?? 0);

/** A logger whose lines land in `lines`, parsed. */
function logInto(lines: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return pino(sink) as unknown as Logger;
}

/** A data dir of `owner` (0700) with its `exports` (0700) under `dir`, and a file of root's beside. */
async function box(dir: string) {
  const data = join(dir, 'data');
  const exports = join(data, 'exports');
  await mkdir(exports, { recursive: true, mode: 0o700 });
  await chown(data, owner, owner);
  await chown(exports, owner, owner);
  // Stands for /etc/shadow or root's keys: root's, 0600, outside the data dir.
  const secret = join(dir, 'shadow');
  await writeFile(secret, 'root:$y$secret\n', { mode: 0o600 });
  /** Writes `name` in exports as the service would stage it. */
  const stage = async (name: string, content: string) => {
    const file = join(exports, name);
    await writeFile(file, content, { mode: 0o600 });
    await chown(file, owner, owner);
    return file;
  };
  return { data, exports, secret, stage };
}

t.test('the staged export of the service is opened, read and removed', async (t) => {
  const { data, stage } = await box(t.testdir());
  const file = await stage('0123456789abcdef.attache', 'sealed bytes');
  const lines: Record<string, unknown>[] = [];
  const staged = await openStagedExport(data, file, logInto(lines));
  let read = '';
  for await (const chunk of staged.stream()) read += String(chunk);
  t.equal(read, 'sealed bytes');
  await staged.remove();
  await staged.close();
  await t.rejects(stat(file), { code: 'ENOENT' }, 'removed from exports');
  t.same(lines, [], 'nothing logged');
});

t.test('anything else the gateway names is refused, logged, and left alone', async (t) => {
  const dir = t.testdir();
  const { data, exports, secret, stage } = await box(dir);
  const lines: Record<string, unknown>[] = [];
  const log = logInto(lines);
  const refused = async (file: unknown, why: RegExp, what: string) => {
    await t.rejects(openStagedExport(data, file, log), { code: 'ATTACHE_UNSAFE_FILE', message: why }, what);
  };
  await refused(secret, /not a file in .*exports/, 'a file outside exports');
  await refused(join(exports, '..', '..', 'shadow'), /not a file in .*exports/, 'a way out with ..');
  await refused(exports, /not a file in .*exports/, 'exports itself');
  await refused(42, /not a path/, 'not a path');
  await refused(join(exports, 'gone.attache'), /it cannot be opened \(ENOENT\)/, 'a file that is not there');

  await symlink(secret, join(exports, 'link.attache'));
  await refused(join(exports, 'link.attache'), /it is a symbolic link/, 'a symlink to a file of root’s');
  await run('mkfifo', [join(exports, 'pipe.attache')]);
  await chown(join(exports, 'pipe.attache'), owner, owner);
  await refused(join(exports, 'pipe.attache'), /not a regular file/, 'a FIFO (opened without blocking)');
  await mkdir(join(exports, 'dir.attache'));
  await refused(join(exports, 'dir.attache'), /not a regular file/, 'a directory');

  // The service's own file linked in twice: not the staged export it claims to be.
  const own = await stage('own.attache', 'the service’s');
  await link(own, join(exports, 'twice.attache'));
  await refused(join(exports, 'twice.attache'), /has 2 links/, 'a hard link');
  await chmod(own, 0o622);
  await refused(own, /it is writable by others/, 'a file others may write');

  if (root) {
    await link(secret, join(exports, 'hard.attache'));
    await refused(join(exports, 'hard.attache'), /belongs to uid 0/, 'a hard link to a file of root’s');
    const mine = join(exports, 'root.attache');
    await writeFile(mine, 'root’s');
    await refused(mine, /belongs to uid 0/, 'a file of another user');
  }
  t.equal(await readFile(secret, 'utf8'), 'root:$y$secret\n', 'root’s file is still there, unchanged');
  t.ok(
    (await readdir(exports)).includes('link.attache'),
    'nothing refused was removed (the service may look at it)',
  );
  t.ok(
    lines.every((l) => l.level === 50 && l.msg === 'refused the export the running gateway named'),
    'each refusal logged as an error',
  );
  t.match(lines[0], { file: secret, err: { code: 'ATTACHE_UNSAFE_FILE' } }, 'naming the file and why');
});

t.test(
  'an exports directory swapped for a symlink, or a data dir others may write, is refused',
  async (t) => {
    const dir = t.testdir();
    const { data, exports, stage } = await box(dir);
    const file = await stage('a.attache', 'sealed');
    const lines: Record<string, unknown>[] = [];
    const log = logInto(lines);
    await chmod(exports, 0o770);
    await t.rejects(openStagedExport(data, file, log), { message: /exports is writable by others/ });
    await chmod(exports, 0o700);
    await chmod(data, 0o777);
    await t.rejects(openStagedExport(data, file, log), { message: /data directory is writable by others/ });
    await chmod(data, 0o700);
    // Elsewhere, a directory of the service's with a file of its own in it.
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere, { mode: 0o700 });
    await chown(elsewhere, owner, owner);
    await rm(exports, { recursive: true });
    await symlink(elsewhere, exports);
    await writeFile(join(elsewhere, 'a.attache'), 'sealed', { mode: 0o600 });
    await chown(join(elsewhere, 'a.attache'), owner, owner);
    await t.rejects(
      openStagedExport(data, file, log),
      { code: 'ATTACHE_UNSAFE_FILE', message: /exports is a symbolic link or not a directory/ },
      'not followed',
    );
    if (root) {
      await rm(exports);
      await mkdir(exports, { mode: 0o700 });
      await t.rejects(openStagedExport(data, file, log), { message: /exports belongs to uid 0/ });
    }
    t.equal(lines.length, root ? 4 : 3, 'each refusal logged');
  },
);

t.test("root reads the gateway's export-signing key only as the service's own file", async (t) => {
  const dir = t.testdir();
  const { data, secret } = await box(dir);
  t.equal(await serviceSigningKey(join(dir, 'not-yet')), undefined, 'no data directory: no key');
  t.equal(await serviceSigningKey(data), undefined, 'no keys directory: no key of its own');
  const keys = join(data, 'keys');
  await mkdir(keys, { mode: 0o700 });
  await chown(keys, owner, owner);
  t.equal(await serviceSigningKey(data), undefined, 'no key file: none');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const file = join(keys, 'export-signing.key');
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await chown(file, owner, owner);
  t.equal(
    await serviceSigningKey(data),
    publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    'its public half',
  );
  await writeFile(file, 'not a key');
  await t.rejects(serviceSigningKey(data), { code: 'ATTACHE_CACHE_KEY' }, 'not a key: said so');
  await rm(file);
  await symlink(secret, file);
  await t.rejects(
    serviceSigningKey(data),
    { code: 'ATTACHE_UNSAFE_FILE', message: /export-signing key: it is a symbolic link; it was not read/ },
    'a symlink to a file of root’s is not read',
  );
  // keys swapped for a symlink to a directory of root's: nothing is read or created there.
  const rootDir = join(dir, 'root-only');
  await mkdir(rootDir, { mode: 0o700 });
  await rm(keys, { recursive: true });
  await symlink(rootDir, keys);
  await t.rejects(serviceSigningKey(data), {
    code: 'ATTACHE_UNSAFE_FILE',
    message: /keys is a symbolic link/,
  });
  t.same(await readdir(rootDir), [], 'nothing created in it');
});

t.test("a delivered file is written only under its own content's SHA-256", async (t) => {
  const content = Buffer.from('drug library');
  const sha256 = createHash('sha256').update(content).digest('hex');
  t.doesNotThrow(() => checkDelivered({ name: 'druglib.bin', sha256 }, content));
  t.throws(() => checkDelivered({ name: 'x', sha256: '../../../etc/cron.d/x' }, content), {
    code: 'ATTACHE_UNSAFE_FILE',
    message: /is not 64 hex digits/,
  });
  t.throws(() => checkDelivered({ name: 'x', sha256: 42 }, content), { code: 'ATTACHE_UNSAFE_FILE' });
  t.throws(() => checkDelivered({ name: 'x', sha256: 'a'.repeat(64) }, content), {
    code: 'ATTACHE_UNSAFE_FILE',
    message: /is not its content’s/,
  });
});

t.test('text of the service’s side reaches a terminal without its control characters', async (t) => {
  t.equal(printable('spo2-bed7\tSpO₂ 97 %\nnext line'), 'spo2-bed7\tSpO₂ 97 %\nnext line', 'text as is');
  t.equal(printable('\x1b]2;owned\x07\r\x00\x7f\u009b6n'), '\uFFFD]2;owned\uFFFD\uFFFD\uFFFD\uFFFD\uFFFD6n');
});

/** `attache cache export` as root (this test's user), as a technician runs it with `sudo`. */
function exportAsRoot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, 'cache', 'export', ...args],
      { env: { PATH: process.env.PATH }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) || 1 : 0, stdout, stderr }),
    );
  });
}

t.test(
  'as root, cache export copies onto the stick only the export the compromised gateway staged',
  { skip: root ? false : 'needs root: the data dir is another user’s' },
  async (t) => {
    // A short path: the control socket's must stay under 108 bytes.
    const dir = await mkdtemp(join(tmpdir(), 'attache-unsafe-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const { data, exports, secret, stage } = await box(dir);
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        gateway: { id: 'gw-unsafe', dataDir: data },
        devices: [
          {
            id: 'm',
            adapter: 'ethernet',
            endpoint: { mode: 'listen', port: 2575, allow: ['127.0.0.1'] },
            format: { kind: 'hl7-mllp' },
          },
        ],
      }),
    );
    const stick = join(dir, 'stick');
    await mkdir(stick, { mode: 0o700 });
    const pub = join(dir, 'recipient.pub.pem');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    // The compromised service: it answers on the control socket with the path of its choice.
    let named = '';
    // Its text carries terminal escapes (retitle, clear the screen): root's terminal shows none.
    const manifest = { records: 3, firstSeq: 1, lastSeq: 3, signer: { keySha256: '\x1b[2J'.repeat(8) } };
    const gateway = new ControlServer({
      path: join(data, 'attache.sock'),
      logger: pino({ level: 'silent' }) as unknown as Logger,
      handler: async (method) => {
        if (named === '') throw new GatewayError('ATTACHE_INTERNAL', 'disk \x1b]2;owned\x07full');
        return method === 'export' ? { file: named, manifest } : {};
      },
    });
    await gateway.start();
    t.teardown(() => gateway.stop());
    const out = join(stick, 'ward.attache');

    const failed = await exportAsRoot(['--out', out, '--recipient', pub, '--config', config]);
    t.equal(
      failed.stderr,
      'attache: ATTACHE_INTERNAL: disk \uFFFD]2;owned\uFFFDfull\n',
      'an error without escapes',
    );

    await symlink(secret, join(exports, 'link.attache'));
    await link(secret, join(exports, 'hard.attache'));
    for (const [file, what] of [
      [secret, 'a file of root’s outside exports'],
      [join(exports, 'link.attache'), 'a symlink to it in exports'],
      [join(exports, 'hard.attache'), 'a hard link to it in exports'],
    ] as const) {
      named = file;
      const result = await exportAsRoot(['--out', out, '--recipient', pub, '--config', config]);
      t.equal(result.code, 1, `${what}: refused`);
      t.match(result.stderr, /attache: ATTACHE_UNSAFE_FILE: refused the export the running gateway named/);
      t.match(result.stderr, /"msg":"refused the export the running gateway named"/, 'and logged');
      t.same(await readdir(stick), [], `${what}: nothing on the stick`);
    }
    t.equal(await readFile(secret, 'utf8'), 'root:$y$secret\n', 'root’s file is there, unchanged');

    named = await stage('0123456789abcdef.attache', 'sealed export bytes');
    const result = await exportAsRoot(['--out', out, '--recipient', pub, '--config', config]);
    t.equal(result.code, 0, `the genuine staged export is copied: ${result.stderr}`);
    t.match(result.stdout, /^exported 3 records \(seq 1\.\.3\) to /);
    t.notOk(result.stdout.includes('\x1b'), 'no escape of the answer reaches the terminal');
    t.equal(await readFile(out, 'utf8'), 'sealed export bytes', 'its bytes on the stick');
    t.match(await stat(out), { uid: 0, mode: 0o100600 }, 'root’s, 0600');
    t.notOk((await readdir(exports)).includes('0123456789abcdef.attache'), 'and removed from exports');
  },
);
