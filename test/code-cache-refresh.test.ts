// attache-code-cache-refresh (image-build/overlay/usr/local/lib/attache), which the appliance runs
// as root after every dpkg run and at boot (attache-code-cache-refresh.service): after `apt upgrade`
// of nodejs it makes the CLI's V8 code cache again for the new Node, running the release as root
// only when nobody else can change any of it, and leaves a software update's release (attache's) to
// attache-code-cache.service. Run here on real directory trees laid out as on the box, with a
// release bundled by scripts/bundle.mjs and its real `attache --write-code-cache`; `nobody` plays
// the `attache` user. The trees are made under a directory whose every ancestor is root's alone,
// since the script checks from /.
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { runFile as run } from './helpers/run-file.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const script = join(repo, 'image-build/overlay/usr/local/lib/attache/attache-code-cache-refresh');
const nobody = 65534;

/** Whether nobody but root can change `path` or any directory above it. */
async function rootsAlone(path: string): Promise<boolean> {
  for (let at = path; ; at = dirname(at)) {
    const s = await lstat(at).catch(() => undefined);
    if (!s || s.isSymbolicLink() || s.uid !== 0 || (s.mode & 0o022) !== 0) return false;
    if (at === dirname(at)) return true;
  }
}

async function baseDir(): Promise<string | undefined> {
  for (const candidate of [homedir(), '/var/lib', repo.replace(/\/$/, '')])
    if (await rootsAlone(candidate)) return candidate;
  return undefined;
}

const base = process.getuid?.() === 0 ? await baseDir() : undefined;

t.test(
  'after a Node upgrade the code cache is made again, only for a release nobody but root can change',
  {
    skip:
      process.getuid?.() !== 0
        ? 'needs root: the script makes root-owned trees and runs the release as root'
        : base === undefined
          ? 'no directory here whose every ancestor is root-owned and writable by nobody else'
          : false,
  },
  async (t) => {
    const dir = await mkdtemp(join(base as string, '.attache-code-cache-refresh-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // As on the box: /opt/attache and its releases/ are attache's (software updates); the image's
    // release is root's, outside it, and releases/<version> names it.
    const box = join(dir, 'opt/attache');
    const release = join(dir, 'usr/local/lib/attache/releases/0.1.0');
    const built = await run(process.execPath, [join(repo, 'scripts/bundle.mjs'), release]);
    t.equal(built.code, 0, 'the release is bundled', { output: built.stderr });
    await mkdir(join(box, 'releases'), { recursive: true });
    await symlink(release, join(box, 'releases/0.1.0'));
    await symlink('releases/0.1.0', join(box, 'current'));
    await chown(box, nobody, nobody);
    await chown(join(box, 'releases'), nobody, nobody);

    // systemd does not run here: `systemctl` on PATH records what the script asks of it.
    const fakes = join(dir, 'bin');
    await mkdir(fakes);
    const started = join(dir, 'systemctl.log');
    await writeFile(join(fakes, 'systemctl'), `#!/bin/sh\necho "$*" >> ${started}\n`, { mode: 0o755 });
    const env = { ...process.env, PATH: `${fakes}:${process.env.PATH ?? ''}` };
    const refresh = () => run(script, [box, process.execPath], env);

    const dist = join(release, 'packages/cli/dist');
    // The release's dist as `current` names it, wherever the release is.
    const live = join(box, 'current/packages/cli/dist');
    const caches = async () => (await readdir(live)).filter((f) => f.endsWith('.cache')).sort();
    const removeCaches = async () => {
      for (const file of await caches()) await rm(join(live, file));
    };
    // How a command starts, as `attache` would (NODE_DEBUG=attache-start says it).
    const startsWith = async () => {
      const ran = await run(
        process.execPath,
        [
          '--v8-pool-size=1',
          join(box, 'current/packages/cli/dist/bin.js'),
          'config',
          'validate',
          '--config',
          join(dir, 'none.json'),
        ],
        { ...process.env, NODE_DEBUG: 'attache-start' },
      );
      return /ATTACHE-START \d+: (.*)/.exec(ran.stderr)?.[1] ?? ran.stderr;
    };
    const expectRefused = async (t: Test, offending: string) => {
      await removeCaches();
      const ran = await refresh();
      t.equal(ran.code, 1, 'exit 1');
      t.match(ran.stdout, `refused: ${offending} is not root's alone`, `names ${offending}`);
      t.same(await caches(), [], 'no cache made');
    };

    t.test("the image's release: made by root, accepted by the commands", async (t) => {
      const ran = await refresh();
      t.equal(ran.code, 0, 'exit 0', { output: ran.stdout + ran.stderr });
      t.match(
        ran.stdout,
        `${release} is root's alone: making its code cache with ${process.execPath}`,
        'says whose release it makes the cache of',
      );
      t.same(
        await caches(),
        ['cli.cjs.config.cache', 'cli.cjs.modbus.cache', 'cli.cjs.other.cache', 'cli.cjs.status.cache'],
        'the four caches',
      );
      for (const file of await caches()) {
        const s = await stat(join(dist, file));
        t.same([s.uid, s.mode & 0o777], [0, 0o644], `${file}: root's, 0644`);
      }
      t.equal(await startsWith(), 'bundle, code cache accepted', 'a command starts with the cache');
      const again = await refresh();
      t.equal(again.code, 0, 'exit 0');
      t.match(again.stdout, 'the code cache is up to date', 'a second run writes nothing');
    });

    t.test('a Node upgrade: the caches naming the old Node are made again', async (t) => {
      for (const file of await caches()) {
        const data = await readFile(join(dist, file));
        const header = data.subarray(0, data.indexOf(0x0a)).toString('latin1');
        const old = header.replace(/ node-\S+ /, ' node-20.0.0 ');
        await writeFile(
          join(dist, file),
          Buffer.concat([Buffer.from(old, 'latin1'), data.subarray(header.length)]),
        );
      }
      t.match(await startsWith(), /^ES modules: .* was made by another Node/, 'the old caches are not used');
      const ran = await refresh();
      t.equal(ran.code, 0, 'exit 0', { output: ran.stdout + ran.stderr });
      t.match(ran.stdout, /cli\.cjs\.config\.cache: \d+ bytes/, 'the stale caches are written');
      t.equal(await startsWith(), 'bundle, code cache accepted', 'a command starts with the cache');
    });

    t.test(
      'the release where attache could swap it (in its releases/, the old layout): refused',
      async (t) => {
        const inside = join(box, 'releases/0.1.0');
        await rm(inside);
        await rename(release, inside);
        t.teardown(async () => {
          await rename(inside, release);
          await symlink(release, inside);
        });
        await expectRefused(t, join(box, 'releases'));
      },
    );

    t.test('a directory on the way to bin.js of another user: refused', async (t) => {
      const cli = join(release, 'packages/cli');
      await chown(cli, nobody, nobody);
      t.teardown(() => chown(cli, 0, 0));
      await expectRefused(t, cli);
    });

    t.test('a directory on the way to bin.js that its group may write: refused', async (t) => {
      await chmod(dist, 0o775);
      t.teardown(() => chmod(dist, 0o755));
      await expectRefused(t, dist);
    });

    t.test("a file of the release that anyone may write, or another user's: refused", async (t) => {
      const worker = join(dist, 'window-worker.mjs');
      await chmod(worker, 0o646);
      await expectRefused(t, worker);
      await chmod(worker, 0o644);
      await chown(worker, nobody, nobody);
      t.teardown(() => chown(worker, 0, 0));
      await expectRefused(t, worker);
    });

    t.test('a directory on the way to bin.js swapped for a symlink: refused', async (t) => {
      const elsewhere = join(box, 'dist');
      await rename(dist, elsewhere);
      await symlink(elsewhere, dist);
      t.teardown(async () => {
        await rm(dist);
        await rename(elsewhere, dist);
      });
      await expectRefused(t, dist);
    });

    t.test('a symlink in the release (it could lead out of it): refused', async (t) => {
      const cjs = join(dist, 'cli.cjs');
      const copy = join(box, 'cli.cjs');
      await rename(cjs, copy);
      await symlink(copy, cjs);
      t.teardown(async () => {
        await rm(cjs);
        await rename(copy, cjs);
      });
      const ran = await refresh();
      t.equal(ran.code, 1, 'exit 1');
      t.match(ran.stdout, `refused: ${cjs} is not root's alone`, 'names the symlink');
    });

    t.test("a software update's release (attache's): left to attache-code-cache.service", async (t) => {
      await removeCaches();
      await run('chown', ['-R', `${nobody}:${nobody}`, release]);
      t.teardown(() => run('chown', ['-R', '0:0', release]));
      const ran = await refresh();
      t.equal(ran.code, 0, 'exit 0', { output: ran.stdout + ran.stderr });
      t.match(ran.stdout, "is nobody's, not root's: left to attache-code-cache.service", 'says why');
      t.equal(
        await readFile(started, 'utf8'),
        '--no-block start attache-code-cache.service\n',
        'starts the unit of attache',
      );
      t.same(await caches(), [], 'root made no cache');
    });
  },
);
