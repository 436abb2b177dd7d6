// What a command run as root accepts from the service's side (the running gateway over its control
// socket, or its own part as the data directory's owner): the service's user is network-facing, and
// a compromised one must not make root read, copy or remove a file of root's.
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
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

/** Throws ATTACHE_UNSAFE_FILE: `subject` refused, `why`, and what that left undone. */
type Refuse = (why: string) => never;

function refuser(subject: string, outcome: string): Refuse {
  return (why) => {
    throw new GatewayError('ATTACHE_UNSAFE_FILE', `refused ${subject}: ${why}; ${outcome}`);
  };
}

/**
 * Opens `path` for reading (never blocking on a FIFO, never taking a terminal) with `flags`
 * (O_NOFOLLOW, O_DIRECTORY); an error (a symlink: ELOOP) refuses, saying what was opened. Resolves
 * undefined when it does not exist and `absent` says that is no refusal.
 */
async function openChecked(
  path: string,
  flags: number,
  refuse: Refuse,
  what: string,
  absent = false,
): Promise<FileHandle | undefined> {
  try {
    return await open(path, flags | O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (absent && code === 'ENOENT') return undefined;
    // With O_DIRECTORY, Linux reports a symlink as ENOTDIR.
    const why =
      code === 'ELOOP'
        ? 'is a symbolic link'
        : code === 'ENOTDIR'
          ? 'is a symbolic link or not a directory'
          : `cannot be opened (${code})`;
    refuse(`${what} ${why}`);
  }
}

/** Refuses unless `stats` is the data directory owner's, on its device, writable by it alone. */
function ownersOnly(stats: Stats, data: Stats, refuse: Refuse, what: string): void {
  if (stats.uid !== data.uid)
    refuse(`${what} belongs to uid ${stats.uid}, not to the data directory's owner`);
  if (stats.dev !== data.dev) refuse(`${what} is on another filesystem than the data directory`);
  if ((stats.mode & sharedWrite) !== 0) refuse(`${what} is writable by others than its owner`);
}

/** A file of the service's, open, checked, in the directory it was opened in. */
interface OwnedFile {
  handle: FileHandle;
  /** Its name in the open directory (`/proc/self/fd/N/NAME`): remove it through this. */
  inDirectory: string;
  close(): Promise<void>;
}

/**
 * Opens `<dataDir>/<dir>/<name>` only when `dir` and the file are the data directory owner's, on
 * its filesystem, writable by it alone, neither a symlink, and the file is a regular one with no
 * other link: `dir` is opened without following a symlink and `name` in that very directory
 * (through `/proc/self/fd`, as `openat` would), so a rename or symlink swapped in between changes
 * nothing. Refuses otherwise; undefined when the data directory, `dir` or the file does not exist
 * and `absent` allows it. The data directory's own path is the config's; only what is inside it is the service's.
 */
async function openOwned(
  dataDir: string,
  dir: string,
  name: string,
  refuse: Refuse,
  absent = false,
): Promise<OwnedFile | undefined> {
  const held: FileHandle[] = [];
  const close = async () => {
    for (const handle of held.reverse()) await handle.close();
  };
  try {
    // Followed if it is a symlink: the config names it.
    const data = await openChecked(resolve(dataDir), O_DIRECTORY, refuse, 'the data directory', absent);
    if (!data) return undefined;
    held.push(data);
    const dataStats = await data.stat();
    if ((dataStats.mode & sharedWrite) !== 0) refuse('the data directory is writable by others');
    const flags = O_DIRECTORY | O_NOFOLLOW;
    const inData = await openChecked(`/proc/self/fd/${data.fd}/${dir}`, flags, refuse, dir, absent);
    if (!inData) {
      await close();
      return undefined;
    }
    held.push(inData);
    ownersOnly(await inData.stat(), dataStats, refuse, dir);
    const inDirectory = `/proc/self/fd/${inData.fd}/${name}`;
    const handle = await openChecked(inDirectory, O_NOFOLLOW, refuse, 'it', absent);
    if (!handle) {
      await close();
      return undefined;
    }
    held.push(handle);
    const stats = await handle.stat();
    if (!stats.isFile()) refuse('not a regular file');
    ownersOnly(stats, dataStats, refuse, 'it');
    if (stats.nlink !== 1) refuse(`it has ${stats.nlink} links (a hard link to another file)`);
    return { handle, inDirectory, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Opens the export a running gateway staged, `file` as its control answer names it, only when it is
 * a plain name in `<dataDir>/exports/` and the file there is the service's own (see openOwned).
 * Rejects ATTACHE_UNSAFE_FILE otherwise (and logs why on `log`), having read and removed nothing.
 */
export async function openStagedExport(dataDir: string, file: unknown, log: Logger): Promise<StagedExport> {
  // Logged, maybe on a terminal: without its control characters.
  const named = printable(typeof file === 'string' ? file : JSON.stringify(file));
  const refuse: Refuse = refuser(
    `the export the running gateway named (${JSON.stringify(named)})`,
    'nothing was copied',
  );
  try {
    if (typeof file !== 'string') refuse('not a path');
    const staging = resolve(exportStaging(dataDir));
    const name = basename(file);
    if (dirname(resolve(file)) !== staging || join(staging, name) !== resolve(file)) {
      refuse(`not a file in ${staging}`);
    }
    const staged = (await openOwned(dataDir, 'exports', name, refuse)) as OwnedFile;
    return {
      stream: () => createReadStream('', { fd: staged.handle, autoClose: false, start: 0 }),
      remove: () => unlink(staged.inDirectory),
      close: staged.close,
    };
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'ATTACHE_UNSAFE_FILE') {
      log.error({ err, file: named }, 'refused the export the running gateway named');
    }
    throw err;
  }
}

/** The most a PEM private key file may hold. */
const keyFileLimit = 64 * 1024;

/**
 * The running or stopped gateway's export-signing public key (PEM), read as `openOwned` opens
 * `<dataDir>/keys/export-signing.key` (root never follows a symlink there, never creates it);
 * undefined when there is none. ATTACHE_UNSAFE_FILE when the file is not the service's own,
 * ATTACHE_CACHE_KEY when it is no EC private key.
 */
export async function serviceSigningKey(dataDir: string): Promise<string | undefined> {
  const refuse: Refuse = refuser("this gateway's export-signing key", 'it was not read');
  const key = await openOwned(dataDir, 'keys', 'export-signing.key', refuse, true);
  if (!key) return undefined;
  let pem: Buffer;
  try {
    const { buffer, bytesRead } = await key.handle.read(Buffer.alloc(keyFileLimit), 0, keyFileLimit, 0);
    pem = buffer.subarray(0, bytesRead);
  } finally {
    await key.close();
  }
  try {
    return createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'pem' }).toString();
  } catch (err) {
    throw new GatewayError(
      'ATTACHE_CACHE_KEY',
      "this gateway's export-signing key is not a PEM private key",
      {
        cause: err,
      },
    );
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
