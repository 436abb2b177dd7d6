// What a command run as root accepts from the service's side (the running gateway over its control
// socket, or its own part as the data directory's owner): the service's user is network-facing, and
// a compromised one must not make root read, copy or remove a file of root's.
import { createHash } from 'node:crypto';
import { constants, createReadStream, type Stats } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { GatewayError, type Logger } from '@attache/core';
import { exportStaging } from '@attache/gateway';
import { printable } from './commands/args.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;

/** Group- or other-writable bits. */
const sharedWrite = 0o022;

/** A staged export root may copy: open, checked, and how to remove it once copied. */
export interface StagedExport {
  /** Its bytes, read from the checked file (never from its path again). */
  stream(): Readable;
  /** Removes it from the exports directory (by name, in the directory checked). */
  remove(): Promise<void>;
  /** Closes what it holds open. */
  close(): Promise<void>;
}

function refuse(file: string, why: string): never {
  throw new GatewayError(
    'ATTACHE_UNSAFE_FILE',
    `refused the export the running gateway named (${printable(JSON.stringify(file))}): ${why}; nothing was copied`,
  );
}

/**
 * Opens `path` for reading (never blocking on a FIFO, never taking a terminal) with `flags`
 * (O_NOFOLLOW, O_DIRECTORY); an error (a symlink: ELOOP) refuses `file`, saying what was opened.
 */
async function openChecked(path: string, flags: number, file: string, what: string): Promise<FileHandle> {
  try {
    return await open(path, flags | O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // With O_DIRECTORY, Linux reports a symlink as ENOTDIR.
    const why =
      code === 'ELOOP'
        ? 'is a symbolic link'
        : code === 'ENOTDIR'
          ? 'is a symbolic link or not a directory'
          : `cannot be opened (${code})`;
    refuse(file, `${what} ${why}`);
  }
}

/** Refuses `file` unless `stats` is the data directory owner's, on its device, writable by it alone. */
function ownersOnly(stats: Stats, data: Stats, file: string, what: string): void {
  if (stats.uid !== data.uid)
    refuse(file, `${what} belongs to uid ${stats.uid}, not to the data directory's owner`);
  if (stats.dev !== data.dev) refuse(file, `${what} is on another filesystem than the data directory`);
  if ((stats.mode & sharedWrite) !== 0) refuse(file, `${what} is writable by others than its owner`);
}

/**
 * Opens the export a running gateway staged, `file` as its control answer names it, only when it is
 * a plain name in `<dataDir>/exports/`, and the file there is a regular file of the data directory's
 * owner, on the same filesystem, with no other link: `exports` is opened without following a symlink
 * and the name is opened in that very directory (through `/proc/self/fd`, as `openat` would), so a
 * rename or symlink swapped in between changes nothing. Rejects ATTACHE_UNSAFE_FILE otherwise (and
 * logs why on `log`), having read and removed nothing. The data directory's own path is the config's
 * (root's choice); only what is inside it is the service's.
 */
export async function openStagedExport(dataDir: string, file: unknown, log: Logger): Promise<StagedExport> {
  // Logged, maybe on a terminal: without its control characters.
  const named = printable(typeof file === 'string' ? file : JSON.stringify(file));
  const held: FileHandle[] = [];
  try {
    if (typeof file !== 'string') refuse(named, 'not a path');
    const staging = resolve(exportStaging(dataDir));
    const name = basename(file);
    if (dirname(resolve(file)) !== staging || join(staging, name) !== resolve(file)) {
      refuse(file, `not a file in ${staging}`);
    }
    // Followed if it is a symlink: the config names it.
    const data = await openChecked(resolve(dataDir), O_DIRECTORY, file, 'the data directory');
    held.push(data);
    const dataStats = await data.stat();
    if ((dataStats.mode & sharedWrite) !== 0) refuse(file, 'the data directory is writable by others');
    const exportsDir = await openChecked(
      `/proc/self/fd/${data.fd}/exports`,
      O_DIRECTORY | O_NOFOLLOW,
      file,
      'exports',
    );
    held.push(exportsDir);
    ownersOnly(await exportsDir.stat(), dataStats, file, 'exports');
    const inExports = `/proc/self/fd/${exportsDir.fd}/${name}`;
    const staged = await openChecked(inExports, O_NOFOLLOW, file, 'it');
    held.push(staged);
    const stats = await staged.stat();
    if (!stats.isFile()) refuse(file, 'not a regular file');
    ownersOnly(stats, dataStats, file, 'it');
    if (stats.nlink !== 1) refuse(file, `it has ${stats.nlink} links (a hard link to another file)`);
    return {
      stream: () => createReadStream('', { fd: staged, autoClose: false, start: 0 }),
      remove: () => unlink(inExports),
      close: async () => {
        for (const handle of held.reverse()) await handle.close();
      },
    };
  } catch (err) {
    for (const handle of held.reverse()) await handle.close();
    if (err instanceof GatewayError && err.code === 'ATTACHE_UNSAFE_FILE') {
      log.error({ err, file: named }, 'refused the export the running gateway named');
    }
    throw err;
  }
}

const sha256Hex = /^[0-9a-f]{64}$/;

/**
 * Refuses (ATTACHE_UNSAFE_FILE) a delivered file that `files export`'s part as the data directory's
 * owner handed over unless its SHA-256, which may name it on the stick, is 64 hex digits and that of
 * `content`: a name built from anything else could leave the export directory.
 */
export function checkDelivered(file: { name: string; sha256: unknown }, content: Uint8Array): void {
  const sha256 = file.sha256;
  const whole = typeof sha256 === 'string' && sha256Hex.test(sha256);
  if (!whole || createHash('sha256').update(content).digest('hex') !== sha256) {
    throw new GatewayError(
      'ATTACHE_UNSAFE_FILE',
      `refused the delivered file ${JSON.stringify(file.name)} the data directory's owner handed over: its SHA-256 ${whole ? 'is not its content’s' : 'is not 64 hex digits'}; it was not written`,
    );
  }
}
