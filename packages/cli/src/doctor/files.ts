import { execFile } from 'node:child_process';
import { constants, type Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { AttacheConfig } from '@attache/core';
import { gatewayPaths } from '@attache/gateway/client';
import { type CheckResult, fail, ok, warn } from './check.js';

const run = promisify(execFile);

/** Who the service runs as: its uid and every gid it has. */
export interface ServiceUser {
  name: string;
  uid: number;
  gids: number[];
}

/** Looks `name` up with id(1); undefined when there is no such user. */
export async function lookUpUser(name: string): Promise<ServiceUser | undefined> {
  try {
    const [uid, gids] = await Promise.all([run('id', ['-u', name]), run('id', ['-G', name])]);
    return { name, uid: Number(uid.stdout.trim()), gids: gids.stdout.trim().split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

/** True when `user` has every permission in `bits` (read 4, write 2, search 1) on a file with `st`'s owner and mode. */
function permits(st: Stats, user: ServiceUser, bits: number): boolean {
  if (user.uid === 0) return true;
  const shift = st.uid === user.uid ? 6 : user.gids.includes(st.gid) ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

/** Why `user` cannot reach `path` with `bit`, or undefined when it can (every parent searchable). */
async function denial(path: string, user: ServiceUser, bit: number): Promise<string | undefined> {
  const full = resolve(path);
  let st: Stats;
  try {
    st = await stat(full);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be examined';
  }
  for (let dir = dirname(full); ; dir = dirname(dir)) {
    const d = await stat(dir);
    if (!permits(d, user, constants.X_OK)) return `its directory ${dir} is closed to ${user.name}`;
    if (dir === dirname(dir)) break;
  }
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const what = bit === constants.W_OK ? 'writable' : 'readable';
  return permits(st, user, bit)
    ? undefined
    : `not ${what} by ${user.name} (owner uid ${st.uid}, gid ${st.gid}, mode ${mode})`;
}

// systemd hands these to the service while it runs (LoadCredential=): absent otherwise.
const credentialsDir = '/run/credentials/';

/** Every file the service reads, by its config key. */
function neededFiles(config: AttacheConfig): [string, string][] {
  const files: [string, string | undefined][] = [
    ['uplink.certFile', config.uplink?.certFile],
    ['uplink.keyFile', config.uplink?.keyFile],
    ['uplink.caFile', config.uplink?.caFile],
    ['jobs.publicKeyFile', config.jobs?.publicKeyFile],
    ['jobs.caFile', config.jobs?.caFile],
    ['cache.exportRecipientFile', config.cache.exportRecipientFile],
  ];
  return files.filter((f): f is [string, string] => f[1] !== undefined);
}

/** The config, every file the service reads, the data directory and the cache key, for `user`. */
export async function checkFiles(
  config: AttacheConfig,
  configPath: string,
  user: ServiceUser,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const fix = `make it readable by ${user.name} (chown/chmod), or fix the path in the config`;
  const readable = async (name: string, path: string) => {
    const why = await denial(path, user, constants.R_OK);
    if (why === undefined) return ok(`file ${name}`, `readable by ${user.name}`);
    if (why === 'does not exist' && path.startsWith(credentialsDir)) {
      return warn(
        `file ${name}`,
        'not present: systemd provides it only while attache.service runs (LoadCredential)',
        'start the service (systemctl start attache) and run doctor again',
      );
    }
    return fail(`file ${name}`, why, fix);
  };
  results.push(await readable('config', configPath));
  for (const [name, path] of neededFiles(config)) results.push(await readable(name, path));
  const { keyFile } = gatewayPaths(config);
  const keyWhy = await denial(keyFile, user, constants.R_OK);
  if (keyWhy === 'does not exist') {
    results.push(ok('file cache.keyFile', 'not created yet (the gateway creates it on first start)'));
  } else if (keyWhy !== undefined) {
    results.push(
      fail(
        'file cache.keyFile',
        keyWhy,
        `chown ${user.name} the key file: the service cannot start without it`,
      ),
    );
  } else results.push(ok('file cache.keyFile', `readable by ${user.name}`));
  results.push(await checkDataDir(config.gateway.dataDir, user));
  return results;
}

/** The data directory and everything in it: the service must read and write all of it. */
async function checkDataDir(dataDir: string, user: ServiceUser): Promise<CheckResult> {
  const top = await denial(dataDir, user, constants.W_OK);
  if (top === 'does not exist') return ok('data directory', 'not created yet (the gateway creates it)');
  const fix = `chown -R ${user.name}: ${dataDir} (a command run as root may have left files the service cannot use)`;
  if (top !== undefined) return fail('data directory', top, fix);
  const offenders: string[] = [];
  let count = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isSymbolicLink() || !(entry.isFile() || entry.isDirectory())) continue;
      count++;
      const st = await stat(path).catch(() => undefined);
      const bits = entry.isDirectory() ? 7 : constants.R_OK | constants.W_OK;
      if (st && !permits(st, user, bits)) offenders.push(path);
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(dataDir);
  if (offenders.length === 0) return ok('data directory', `${count} entries, all usable by ${user.name}`);
  const shown = offenders.slice(0, 3).join(', ');
  const more = offenders.length > 3 ? ` and ${offenders.length - 3} more` : '';
  return fail('data directory', `${offenders.length} entries ${user.name} cannot use: ${shown}${more}`, fix);
}
