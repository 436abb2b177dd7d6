import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GatewayError } from '@attache/core';
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
