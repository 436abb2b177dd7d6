// The release's fast start (compiled-start.ts) on a small bundle of its own: a command starts from
// the bundle only with a code cache that this Node made from this bundle and that only the bundle's
// owner can write; anything else leaves the start to the ES modules (undefined), and a cache V8
// refuses still runs the command.

import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import {
  type BundleAt,
  bundleNames,
  cacheFileOf,
  cacheHeader,
  type Profile,
  profileOf,
  startCompiled,
} from '../dist/compiled-start.js';

const runs = globalThis as { compiledStartRuns?: string[] };
const bundle = (name: string) => `
function greet(name) { return 'ran ' + name; }
exports.main = async () => { (globalThis.compiledStartRuns ??= []).push(greet(${JSON.stringify(name)})); };
`;
const run = promisify(execFile);
const compiledStart = new URL('../dist/compiled-start.js', import.meta.url).href;

/**
 * Makes the cache of `profile` in a process of its own, under umask 077, as the root unit does: V8
 * would take a script this process compiled before from its own memory, never from the cache.
 */
async function makeCache(at: BundleAt, profile: Profile): Promise<void> {
  const script = `process.umask(0o077);
import(${JSON.stringify(compiledStart)}).then(({ loadBundle, writeCodeCache }) => {
  const at = JSON.parse(process.argv[1]);
  writeCodeCache(at, ${JSON.stringify(profile)}, loadBundle(at, ${JSON.stringify(profile)}).script);
});`;
  await run(process.execPath, ['-e', script, JSON.stringify(at)]);
}
const digests = (digest: string): Record<Profile, string> => ({
  config: `${digest} (config)`,
  status: `${digest} (status)`,
  modbus: `${digest} (modbus)`,
  other: `${digest} (other)`,
});
const argv = (command: string) => [
  process.execPath,
  '/opt/attache/current/packages/cli/dist/bin.js',
  command,
];

t.test('a command starts from the bundle only with a cache of its own', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-compiled-start-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const profile of ['status', 'other'] as const)
    await writeFile(join(dir, bundleNames[profile]), bundle(profile));
  const at: BundleAt = { dir, digests: digests('digest-of-the-bundle') };
  runs.compiledStartRuns = [];

  t.equal(startCompiled({ dir, digests: undefined }, argv('status')), undefined, 'no bundle: the ES modules');
  t.equal(startCompiled(at, argv('status')), undefined, 'no cache yet: the ES modules');

  await makeCache(at, 'status');
  const file = cacheFileOf('status', at);
  t.equal((await stat(file)).mode & 0o777, 0o644, 'the cache is 0644 whatever the umask');
  t.equal(
    (await readFile(file, 'latin1')).split('\n')[0],
    cacheHeader('status', at).trim(),
    'it names its Node and bundle',
  );

  const started = startCompiled(at, argv('status'));
  t.equal(started?.cache, 'accepted', 'V8 takes the cache');
  await started?.done;
  t.same(runs.compiledStartRuns, ['ran status'], 'and the command ran from the bundle');
  t.equal(startCompiled(at, argv('status'))?.cache, 'accepted', 'as often as it starts');
  t.equal(
    startCompiled(at, argv('sync')),
    undefined,
    '`sync` starts with the cache of `other`, not made yet',
  );
  await makeCache(at, 'other');
  runs.compiledStartRuns = [];
  await startCompiled(at, argv('sync'))?.done;
  t.same(runs.compiledStartRuns, ['ran other'], 'and then from the whole CLI, not the status bundle');
  t.not(cacheHeader('status', at), cacheHeader('other', at), 'each cache names its own bundle');
  t.equal(startCompiled(at, argv('run')), undefined, '`attache run` always takes the ES modules');
  t.equal(startCompiled(at, argv('console')), undefined, 'and so does the console screen (a service too)');
  t.equal(
    startCompiled(at, argv('config')),
    undefined,
    'a command whose cache is missing takes the ES modules',
  );
  t.equal(
    startCompiled({ dir, digests: digests('digest-of-another-bundle') }, argv('status')),
    undefined,
    'a cache made from another bundle is not used',
  );

  const made = await readFile(file);
  await writeFile(
    file,
    Buffer.concat([
      Buffer.from(cacheHeader('status', at).replace(/node-\S+/, 'node-0.0.0')),
      made.subarray(cacheHeader('status', at).length),
    ]),
  );
  t.equal(startCompiled(at, argv('status')), undefined, 'a cache made by another Node is not used');

  await writeFile(file, made);
  await chmod(file, 0o664);
  t.equal(startCompiled(at, argv('status')), undefined, 'a cache others may write is not used');
  await chmod(file, 0o644);
  if (process.getuid?.() === 0) {
    await chown(file, 65534, 65534);
    t.equal(startCompiled(at, argv('status')), undefined, 'nor one another user owns');
    await chown(file, 0, 0);
  }

  await writeFile(
    file,
    Buffer.concat([Buffer.from(cacheHeader('status', at)), Buffer.alloc(made.length, 7)]),
    {
      mode: 0o644,
    },
  );
  runs.compiledStartRuns = [];
  const refused = startCompiled(at, argv('status'));
  t.equal(refused?.cache, 'rejected', 'V8 refuses a damaged cache');
  await refused?.done;
  t.same(runs.compiledStartRuns, ['ran status'], 'and the command still runs, compiled from the source');
  runs.compiledStartRuns = [];
});

t.test('each command starts with the cache made by its kind of command', async (t) => {
  t.equal(profileOf('config'), 'config');
  t.equal(profileOf('status'), 'status');
  t.equal(profileOf('sync'), 'other', '`sync` needs the gateway group, not in the status bundle');
  t.equal(profileOf('modbus'), 'modbus');
  t.equal(profileOf('ports'), 'other');
  t.equal(profileOf(undefined), 'other');
});

t.test('the development tree has no bundle to make a code cache of', async (t) => {
  const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
  const result = await run(process.execPath, [bin, '--write-code-cache']).catch(
    (err: { code: number; stderr: string }) => err,
  );
  t.equal((result as { code?: number }).code, 1, 'exit status 1');
  t.match(result.stderr, /^attache: no code cache written: no bundle beside this file/, 'and says why');
});
