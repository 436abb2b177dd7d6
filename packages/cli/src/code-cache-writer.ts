import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bundleFile,
  cacheFileOf,
  loadBundle,
  type Profile,
  profiles,
  readCache,
  thisRelease,
  writeCodeCache,
} from './compiled-start.js';

// `attache --write-code-cache` (compiled-start.ts): imported only by that command, so that no other
// command loads child_process and the rest for it.

/**
 * `attache --write-code-cache`: makes the code cache of each profile for this Node where it has none
 * that it may use, each by running its command from the bundle in a process of its own (`attache
 * --write-code-cache <profile> <args>`, which writes the cache when it exits) on a config in a
 * temporary directory (a listener, a data directory of its own). Only the bundle's owner may: a cache
 * anyone else wrote is never used. Resolves the caches written and their sizes; rejects when one
 * was not written.
 */
export async function writeCodeCaches(): Promise<{ file: string; bytes: number }[]> {
  const [node, bin, , profile, ...args] = process.argv as [string, string, ...string[]];
  if (thisRelease.digests === undefined)
    throw new Error('no bundle beside this file: only a release has a code cache');
  const owner = statSync(bundleFile(thisRelease, 'other')).uid;
  if (process.getuid?.() !== owner)
    throw new Error(
      `only the owner of ${bundleFile(thisRelease, 'other')} (uid ${owner}) may write its code cache`,
    );
  if (profile !== undefined) {
    process.argv = [node, bin, ...args];
    const { cli, script } = loadBundle(thisRelease, profile as Profile);
    process.once('exit', () => writeCodeCache(thisRelease, profile as Profile, script));
    await cli.main();
    return [];
  }
  const stale = (Object.keys(profiles) as Profile[]).filter(
    (p) => typeof readCache(thisRelease, p) === 'string',
  );
  if (stale.length === 0) return [];
  const dir = await mkdtemp(join(tmpdir(), 'attache-code-cache-'));
  try {
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        gateway: { id: 'code-cache', dataDir: join(dir, 'data') },
        devices: [
          {
            id: 'monitor',
            adapter: 'ethernet',
            endpoint: { mode: 'listen', host: '127.0.0.1', port: 2575, allow: ['127.0.0.1'] },
            format: { kind: 'hl7-mllp' },
          },
        ],
      }),
    );
    const written = [];
    for (const profile of stale) {
      const file = cacheFileOf(profile);
      rmSync(file, { force: true });
      const command = profiles[profile].map((a) => a.replace('{config}', config));
      const child = spawn(node, [...process.execArgv, bin, '--write-code-cache', profile, ...command], {
        cwd: dir,
        stdio: 'ignore',
      });
      await once(child, 'exit');
      written.push({ file, bytes: statSync(file).size });
    }
    return written;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
