import { execFile, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  access,
  chmod,
  chown,
  copyFile,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FileStore, readExportManifest } from '@attache/cache';
import { GatewayError, nullLogger } from '@attache/core';
import { loadConfig, openCache, signingKeyInfo } from '@attache/gateway';
import t from 'tap';
import { becomeDataDirOwner, type OwnerPart, runOwnerPart } from '../src/privileges.js';

const root = process.getuid?.() === 0;
const run = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

t.test('a directory of root, or a process that is not root: nothing changes', async (t) => {
  const dir = t.testdir();
  if (root) await chown(dir, 0, 0);
  t.equal(await becomeDataDirOwner(join(dir, 'not', 'yet', 'created')), undefined);
  t.equal(process.geteuid?.(), process.getuid?.());
});

/** Everything `stream` yields, as one buffer. */
async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

t.test("a part as the data dir's owner runs in this process when no switch is needed", async (t) => {
  const dir = t.testdir();
  if (root) await chown(dir, 0, 0);
  const events: unknown[] = [];
  const part: OwnerPart<{ times: number }, { uid: number | undefined; read: number }> = async (
    params,
    io,
  ) => {
    const input = await drain(io.input);
    io.notify({ read: input.length });
    await pipeline(Readable.from(Array.from({ length: params.times }, () => input)), io.output);
    return { uid: process.getuid?.(), read: input.length };
  };
  const run = await runOwnerPart(
    dir,
    'echo',
    part,
    { times: 2 },
    {
      input: Readable.from([Buffer.from('ab'), Buffer.from('c')]),
      onEvent: (event) => events.push(event),
    },
  );
  t.equal((await drain(run.output)).toString(), 'abcabc', 'the input reached the part, its output came back');
  t.same(await run.result, { uid: process.getuid?.(), read: 3 }, 'its result, in this process');
  t.same(events, [{ read: 3 }], 'its progress events');
});

t.test("a part's failure, or its input's, is the run's; its output ends either way", async (t) => {
  const dir = t.testdir();
  const failing = await runOwnerPart(
    dir,
    'fails',
    async (_params: null, io) => {
      io.output.write('partial');
      throw new GatewayError('ATTACHE_CACHE_LOCKED', 'held');
    },
    null,
    { input: Readable.from(Array.from({ length: 64 }, () => Buffer.alloc(65536))) },
  );
  t.equal((await drain(failing.output)).toString(), 'partial', 'output ends after what was written');
  await t.rejects(
    failing.result,
    { code: 'ATTACHE_CACHE_LOCKED', message: 'held' },
    'unread input does not hold it',
  );

  const source = new Readable({ read: () => undefined });
  const reading = await runOwnerPart(
    dir,
    'reads',
    async (_params: null, io) => (await drain(io.input)).length,
    null,
    {
      input: source,
    },
  );
  source.push('some');
  source.destroy(Object.assign(new Error('EIO on the stick'), { code: 'EIO' }));
  reading.output.resume();
  await t.rejects(
    reading.result,
    { code: 'EIO' },
    "the input's error, not what the part made of a short input",
  );
});

/** A Node made to refuse id changes, as {@link refusingNode} writes it. */
interface RefusingNode {
  /** The preload (`--require`). */
  preload: string;
  /** Where each refused call is recorded, one name a line. */
  log: string;
  /** Where tap's hooks in a process that is not root write what they record. */
  records: string;
}

/**
 * A preload that makes this Node refuse to change ids as Debian's Node 20 does (linked to a libuv
 * that may use io_uring: ERR_INVALID_STATE, CVE-2024-22017), and records each refusal in `log`.
 * tap's hooks (in NODE_OPTIONS, loaded after a `--require`) write their process records and coverage
 * at exit under `$_TAPJS_PROCESSINFO_CWD_/.tap`, the repository's: a process that is not root (the
 * data dir's owner) may not, and writes them under `records` instead ({@link keepTapRecords}).
 */
async function refusingNode(dir: string): Promise<RefusingNode> {
  const preload = join(dir, 'refuse-ids.cjs');
  const log = join(dir, 'refused.txt');
  const records = join(dir, 'tap-records');
  await mkdir(records);
  await chmod(records, 0o777);
  await writeFile(
    preload,
    `const { appendFileSync } = require('node:fs');
for (const name of ['setuid', 'setgid', 'seteuid', 'setegid', 'setgroups', 'initgroups']) {
  process[name] = () => {
    appendFileSync(${JSON.stringify(log)}, name + '\\n');
    throw Object.assign(new Error(name + '() disabled: io_uring may be enabled. See CVE-2024-22017.'), {
      code: 'ERR_INVALID_STATE',
    });
  };
}
if (process.getuid() !== 0 && process.env._TAPJS_PROCESSINFO_CWD_) {
  process.env._TAPJS_PROCESSINFO_CWD_ = ${JSON.stringify(records)};
}
`,
  );
  return { preload, log, records };
}

/** Moves what tap's hooks recorded in processes that were not root into the repository's `.tap`. */
async function keepTapRecords(node: RefusingNode): Promise<void> {
  const repository = process.env._TAPJS_PROCESSINFO_CWD_;
  if (repository === undefined) return;
  for (const kind of ['processinfo', 'coverage']) {
    const from = join(node.records, '.tap', kind);
    for (const file of await readdir(from).catch(() => [])) {
      await copyFile(join(from, file), join(repository, '.tap', kind, file));
      await rm(join(from, file));
    }
  }
}

t.test(
  "as root, with a Node that refuses to change ids, a command still runs as the data dir's owner",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const dir = t.testdir();
    await chmod(dir, 0o755);
    const { data, configPath: config } = await boxWithBacklog(dir, 'data', 0);
    const node = await refusingNode(dir);
    const { preload, log } = node;
    const { stdout } = await run(
      process.execPath,
      ['--require', preload, bin, 'technician', 'secret', '--config', config],
      {
        env: { PATH: process.env.PATH },
      },
    );
    await keepTapRecords(node);
    t.match(stdout, /^\S{16,}\n$/, 'the secret is printed');
    const secret = join(data, 'technician', 'secret');
    t.match(await stat(secret), { uid: 65534, gid: 65534 }, "the secret file is the owner's");
    await t.rejects(readFile(log, 'utf8'), { code: 'ENOENT' }, 'no id change was asked of this Node');
  },
);

const owner = 65534; // nobody

/** Every path under `dir` whose owner is not `uid`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const wrong: string[] = [];
  for (const entry of await readdir(dir, { recursive: true })) {
    if ((await lstat(join(dir, entry))).uid !== uid) wrong.push(entry);
  }
  return wrong;
}

/** Gives `dir` and everything under it to `uid`, as the service's files are on the appliance. */
async function giveTo(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  for (const entry of await readdir(dir, { recursive: true })) await chown(join(dir, entry), uid, uid);
}

/**
 * A gateway's config and data dir (the owner's, 0700) under `dir`, with `records` readings in its
 * cache; a USB stick's directory only root may enter; what the refusing Node logs.
 */
async function boxWithBacklog(dir: string, name: string, records: number) {
  const data = join(dir, name);
  await mkdir(data, { mode: 0o700 });
  const configPath = join(dir, `${name}.json`);
  const config = {
    version: 1,
    gateway: { id: 'gw-ids', dataDir: data },
    devices: [
      {
        id: 'm',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', port: 2575, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
    ],
  };
  await writeFile(configPath, JSON.stringify(config));
  const cache = await openCache(await loadConfig(configPath), nullLogger);
  for (let n = 1; n <= records; n++) {
    await cache.append({
      gatewayId: 'gw-ids',
      deviceId: 'm',
      adapter: 'ethernet',
      protocol: 'hl7-mllp',
      capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
      clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
      observations: [
        { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + n, unit: '%', status: 'valid' },
      ],
    });
  }
  await cache.close();
  await giveTo(data, owner);
  return { data, configPath };
}

/** The number of records waiting in the cache of `configPath` (opened as root: call it last). */
async function backlog(configPath: string): Promise<number> {
  const cache = await openCache(await loadConfig(configPath), nullLogger);
  try {
    return (await cache.stats()).records;
  } finally {
    await cache.close();
  }
}

/** `attache <args>` as root under umask 077 with this Node made to refuse id changes by `node`. */
async function attacheAsRoot(
  node: RefusingNode,
  args: string[],
  preload = node.preload,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'sh',
      ['-c', 'umask 077 && exec "$@"', 'sh', process.execPath, '--require', preload, bin, ...args],
      { env: { PATH: process.env.PATH }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) || 1 : 0, stdout, stderr }),
    );
  });
  await keepTapRecords(node);
  return result;
}

/** A directory only root may enter, as a USB stick mounted by root with umask 077. */
async function stick(dir: string): Promise<string> {
  const path = join(dir, 'stick');
  await mkdir(path, { mode: 0o700 });
  return path;
}

/** A recipient's key pair on the stick `usb`, root's only (the owner's part never reads them). */
async function recipientOn(usb: string): Promise<{ pub: string; priv: string }> {
  const recipient = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = join(usb, 'recipient.pub.pem');
  const priv = join(usb, 'recipient.pem');
  await writeFile(pub, recipient.publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o600 });
  await writeFile(priv, recipient.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { pub, priv };
}

/**
 * A ward box whose backlog holds `records`, exported as root under a Node that refuses id changes
 * onto a stick of root's, with the recipient's keys beside it.
 */
async function exportedWard(dir: string, records: number) {
  await chmod(dir, 0o755);
  const node = await refusingNode(dir);
  const ward = await boxWithBacklog(dir, 'ward', records);
  const usb = await stick(dir);
  const { pub, priv } = await recipientOn(usb);
  const out = join(usb, 'ward.attache');
  const exported = await attacheAsRoot(node, [
    ...['cache', 'export', '--out', out, '--recipient', pub, '--config', ward.configPath],
  ]);
  return { node, ward, usb, priv, out, exported };
}

t.test(
  "as root, with a Node that refuses to change ids, cache export and import go through the owner's part",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const dir = t.testdir();
    const { node, ward, usb, priv, out, exported } = await exportedWard(dir, 3);
    const { log } = node;
    t.equal(exported.code, 0, `exported: ${exported.stderr}`);
    t.match(exported.stdout, /^exported 3 records \(seq 1\.\.3\) to /);
    t.match(await stat(out), { uid: 0, mode: 0o100600 }, "the file on the stick is root's, 0600");
    t.same(
      (await readdir(usb)).sort(),
      ['recipient.pem', 'recipient.pub.pem', 'ward.attache'],
      'nothing else left on the stick',
    );
    t.equal((await readExportManifest(out)).manifest.records, 3, 'a signed export of the backlog');
    t.notOk((await readFile(out)).includes('MDC_PULS_OXIM_SAT_O2'), 'no record in clear');
    t.same(await notOwnedBy(ward.data, owner), [], "what the export wrote in the data dir is the owner's");
    t.same(await readdir(join(ward.data, 'exports')), [], 'nothing left staged');

    // A replacement box with the same gateway id takes the backlog in.
    const spare = await boxWithBacklog(dir, 'spare', 0);
    const signer = join(usb, 'ward-signing.pub.pem');
    await writeFile(signer, (await signingKeyInfo(join(ward.data, 'keys', 'export-signing.key'))).publicKey);
    const short = join(usb, 'short.attache');
    await writeFile(short, (await readFile(out)).subarray(0, -10));
    const refused = await attacheAsRoot(node, [
      ...['cache', 'import', short, '--key', priv, '--signer', signer, '--config', spare.configPath],
    ]);
    t.equal(refused.code, 1, 'a truncated export is refused');
    t.match(
      refused.stderr,
      /^attache: ATTACHE_MALFORMED: export file refused: the ciphertext does not match/,
    );
    const imported = await attacheAsRoot(node, [
      ...['cache', 'import', out, '--key', priv, '--signer', signer, '--config', spare.configPath],
    ]);
    t.equal(imported.code, 0, `imported: ${imported.stderr}`);
    t.match(imported.stdout, /^imported 3 records \(0 already waiting\) from /);
    t.same(await notOwnedBy(spare.data, owner), [], "what the import wrote in the data dir is the owner's");
    t.same(await readdir(join(spare.data, 'exports')), [], 'no copy left in the data dir');
    await t.rejects(readFile(log, 'utf8'), { code: 'ENOENT' }, 'no id change was asked of this Node');
    t.equal(await backlog(spare.configPath), 3, 'the records wait in the new cache');
  },
);

t.test(
  'as root, with a Node that refuses to change ids, files export reads the store as the owner',
  { skip: root ? false : 'needs root' },
  async (t) => {
    const dir = t.testdir();
    await chmod(dir, 0o755);
    const node = await refusingNode(dir);
    const { log } = node;
    const ward = await boxWithBacklog(dir, 'ward', 0);
    const store = new FileStore({ path: join(ward.data, 'files') });
    await store.open();
    const druglib = randomBytes(200_000);
    const settings = Buffer.from('{"rate":"ml/h"}\n');
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    await store.put(druglib, { sha256: sha(druglib), size: druglib.length, name: 'pump-3/druglib.bin' });
    await store.put(settings, { sha256: sha(settings), size: settings.length, name: 'settings.json' });
    await writeFile(join(ward.data, 'files', 'objects', sha(settings)), '{"rate":"l/h"}\n');
    await giveTo(ward.data, owner);
    const usb = await stick(dir);

    const out = join(usb, 'files');
    const result = await attacheAsRoot(node, ['files', 'export', '--out', out, '--config', ward.configPath]);
    t.equal(result.code, 1, 'exit 1: a file was refused');
    t.match(result.stdout, /^1 files exported to /);
    t.match(result.stderr, /refused settings\.json .*quarantined/);
    t.same(await readFile(join(out, 'pump-3', 'druglib.bin')), druglib, 'the good file, whole');
    t.match(await stat(join(out, 'pump-3', 'druglib.bin')), { uid: 0 }, "root's, on the stick");
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
    t.same(
      manifest.files.map((f: { path: string }) => f.path),
      ['pump-3/druglib.bin'],
    );
    t.same(
      manifest.refused.map((f: { name: string }) => f.name),
      ['settings.json'],
    );
    t.equal(
      (await readdir(join(ward.data, 'files', 'quarantine'))).length,
      1,
      'the altered file is quarantined',
    );
    t.same(await notOwnedBy(ward.data, owner), [], "by the owner: the data dir is still the owner's");
    await t.rejects(readFile(log, 'utf8'), { code: 'ENOENT' }, 'no id change was asked of this Node');
  },
);

t.test(
  "as root, files export writes nothing outside --out whatever the owner's part hands over",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const dir = t.testdir();
    await chmod(dir, 0o755);
    const node = await refusingNode(dir);
    // The owner's part taken over (the service's user may ptrace it): it renames the file it hands
    // over so that root would build its path on the stick from a SHA-256 that climbs out of --out.
    const lying = join(dir, 'lying.cjs');
    await writeFile(
      lying,
      `require(${JSON.stringify(node.preload)});
if (process.env.ATTACHE_OWNER_PART) {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk, ...rest) => {
    const text = Buffer.from(chunk).toString('latin1');
    if (!text.startsWith('{"file":')) return write(chunk, ...rest);
    const frame = JSON.parse(text);
    Object.assign(frame.file, { name: '../escaped', sha256: '../escaped' });
    return write(JSON.stringify(frame) + '\\n', ...rest);
  };
}
`,
    );
    const ward = await boxWithBacklog(dir, 'ward', 0);
    const store = new FileStore({ path: join(ward.data, 'files') });
    await store.open();
    const druglib = randomBytes(1000);
    const sha256 = createHash('sha256').update(druglib).digest('hex');
    await store.put(druglib, { sha256, size: druglib.length, name: 'druglib.bin' });
    await giveTo(ward.data, owner);
    const usb = await stick(dir);
    const out = join(usb, 'files');
    const result = await attacheAsRoot(
      node,
      ['files', 'export', '--out', out, '--config', ward.configPath],
      lying,
    );
    t.equal(result.code, 1, 'refused');
    t.match(result.stderr, /^attache: ATTACHE_UNSAFE_FILE: refused the delivered file "\.\.\/escaped"/);
    t.same(await readdir(usb), [], 'nothing written on the stick, in --out or beside it');
  },
);

t.test(
  "as root, when the owner's part dies mid-way, the command fails and leaves nothing on the stick",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const dir = t.testdir();
    await chmod(dir, 0o755);
    const node = await refusingNode(dir);
    const { preload } = node;
    // The owner's part is killed as soon as it has its parameters.
    const dying = join(dir, 'dying.cjs');
    await writeFile(
      dying,
      `require(${JSON.stringify(preload)});
if (process.env.ATTACHE_OWNER_PART) process.on('message', () => process.kill(process.pid, 'SIGKILL'));
`,
    );
    const ward = await boxWithBacklog(dir, 'ward', 2);
    const usb = await stick(dir);
    const { pub } = await recipientOn(usb);
    const out = join(usb, 'ward.attache');
    const result = await attacheAsRoot(
      node,
      [...['cache', 'export', '--out', out, '--recipient', pub, '--config', ward.configPath]],
      dying,
    );
    t.equal(result.code, 1);
    t.match(
      result.stderr,
      /^attache: the part of this command that runs as the data directory's owner \(uid 65534\) ended \(SIGKILL\) before it finished/,
    );
    t.same(
      await readdir(usb),
      ['recipient.pem', 'recipient.pub.pem'],
      'no export and no temporary file on the stick',
    );
    t.equal(await backlog(ward.configPath), 2, 'the backlog is whole');
  },
);

/** Resolves once `check` resolves true; polls every 50 ms, fails after 30 s. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The pids of `pid`'s children, with their real uid. */
async function childrenOf(pid: number): Promise<{ pid: number; uid: number }[]> {
  const list = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const children: { pid: number; uid: number }[] = [];
  for (const child of list.split(' ').filter(Boolean).map(Number)) {
    const status = await readFile(`/proc/${child}/status`, 'utf8').catch(() => '');
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    if (uid !== undefined) children.push({ pid: child, uid: Number(uid) });
  }
  return children;
}

t.test(
  'as root, when the command is killed, its part as the owner ends too and nothing is restored',
  { skip: root ? false : 'needs root' },
  async (t) => {
    const { node, ward, usb, priv, out, exported } = await exportedWard(t.testdir(), 2);
    const { preload } = node;
    t.equal(exported.code, 0, exported.stderr);
    // The import reads a stick that stalls half-way (a FIFO): its part as the owner is running.
    const fifo = join(usb, 'slow.attache');
    await run('mkfifo', [fifo]);
    const command = spawn(
      process.execPath,
      ['--require', preload, bin].concat([
        'cache',
        'import',
        fifo,
        '--key',
        priv,
        '--config',
        ward.configPath,
      ]),
      { env: { PATH: process.env.PATH }, stdio: 'ignore' },
    );
    const exited = once(command, 'exit');
    const writer = await open(fifo, 'w');
    const bytes = await readFile(out);
    await writer.write(bytes.subarray(0, bytes.length - 20));
    let part: { pid: number; uid: number } | undefined;
    await until("the owner's part runs", async () => {
      part = (await childrenOf(command.pid ?? 0)).find((c) => c.uid === owner);
      return part !== undefined;
    });
    command.kill('SIGTERM');
    t.same(await exited, [null, 'SIGTERM'], 'the command ends by SIGTERM');
    await until("the owner's part has ended", () =>
      access(`/proc/${part?.pid}`).then(
        () => false,
        () => true,
      ),
    );
    await writer.close();
    await keepTapRecords(node);
    t.pass("the owner's part ended with it");
    t.same(await notOwnedBy(ward.data, owner), [], "the data dir is still the owner's");
    t.equal(await backlog(ward.configPath), 2, 'the cache is whole and free to open');
  },
);
