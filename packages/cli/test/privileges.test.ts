import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { asDataDirOwner, becomeDataDirOwner } from '../src/privileges.js';

const root = process.getuid?.() === 0;
const run = promisify(execFile);
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

t.test('a directory of root, or a process that is not root: nothing changes', async (t) => {
  const dir = t.testdir();
  if (root) await chown(dir, 0, 0);
  t.equal(await becomeDataDirOwner(join(dir, 'not', 'yet', 'created')), undefined);
  t.equal(await asDataDirOwner(dir, async (owner) => owner), undefined);
  t.equal(process.geteuid?.(), process.getuid?.());
});

t.test(
  "as root, the data dir's owner writes what lands in it, and root is back afterwards",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const data = join(t.testdir(), 'data');
    await mkdir(data, { mode: 0o700 });
    await chown(data, 65534, 65534);
    const file = join(data, 'written');
    const owner = await asDataDirOwner(join(data, 'cache'), async (owner) => {
      t.equal(process.geteuid?.(), 65534, 'effective uid of the owner inside');
      await writeFile(file, 'x', { mode: 0o600 });
      return owner;
    });
    t.same(owner, { uid: 65534, gid: 65534 }, 'the nearest existing ancestor decides');
    t.match(await stat(file), { uid: 65534, gid: 65534 });
    t.equal(process.geteuid?.(), 0, 'root again');
    await t.rejects(
      asDataDirOwner(data, async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    t.equal(process.geteuid?.(), 0, 'root again after a failure too');
  },
);

/**
 * A preload that makes this Node refuse to change ids as Debian's Node 20 does (linked to a libuv
 * that may use io_uring: ERR_INVALID_STATE, CVE-2024-22017), and records each refusal in `log`.
 */
async function refusingNode(dir: string): Promise<{ preload: string; log: string }> {
  const preload = join(dir, 'refuse-ids.cjs');
  const log = join(dir, 'refused.txt');
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
`,
  );
  return { preload, log };
}

t.test(
  "as root, with a Node that refuses to change ids, a command still runs as the data dir's owner",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const dir = t.testdir();
    await chmod(dir, 0o755);
    const data = join(dir, 'data');
    await mkdir(data, { mode: 0o700 });
    await chown(data, 65534, 65534);
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
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
      }),
    );
    const { preload, log } = await refusingNode(dir);
    const { stdout } = await run(
      process.execPath,
      ['--require', preload, bin, 'technician', 'secret', '--config', config],
      {
        env: { PATH: process.env.PATH },
      },
    );
    t.match(stdout, /^\S{16,}\n$/, 'the secret is printed');
    const secret = join(data, 'technician', 'secret');
    t.match(await stat(secret), { uid: 65534, gid: 65534 }, "the secret file is the owner's");
    await t.rejects(readFile(log, 'utf8'), { code: 'ENOENT' }, 'no id change was asked of this Node');
  },
);

t.test(
  "with a Node that refuses to change ids, a command's part as the owner is refused before anything changes",
  { skip: root ? false : 'needs root' },
  async (t) => {
    const data = join(t.testdir(), 'data');
    await mkdir(data, { mode: 0o700 });
    await chown(data, 65534, 65534);
    const setgroups = process.setgroups;
    process.setgroups = () => {
      throw Object.assign(new Error('setgroups() disabled: io_uring may be enabled. See CVE-2024-22017.'), {
        code: 'ERR_INVALID_STATE',
      });
    };
    t.teardown(() => {
      process.setgroups = setgroups;
    });
    let ran = false;
    await t.rejects(
      asDataDirOwner(data, async () => {
        ran = true;
      }),
      /cannot take the data directory's owner's ids \(uid 65534\).*runuser -u USER -- attache/,
    );
    t.notOk(ran, 'the part was not run as root instead');
    t.equal(process.geteuid?.(), 0, 'still root');
  },
);
