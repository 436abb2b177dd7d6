import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GatewayError, mkdirDurably } from '@attache/core';

/** The keys that seal the cache's values. A snapshot: rotating the file does not change it. */
export interface CacheKeyring {
  /** Id of the key new values are sealed with. */
  readonly currentId: string;
  /** Id of the first key of the file; the token index key derives from it, so it never changes. */
  readonly indexId: string;
  /** The 32-byte key with this id, undefined when the keyring has none. */
  key(id: string): Buffer | undefined;
}

interface KeyFile {
  version: 1;
  current: string;
  keys: Record<string, string>;
}

const idPattern = /^[A-Za-z0-9._-]{1,64}$/;
const base64Pattern = /^[A-Za-z0-9+/]{43}=$/;

function keyError(path: string, what: string, cause?: unknown): GatewayError {
  return new GatewayError('ATTACHE_CACHE_KEY', `cache key file ${path}: ${what}`, { cause });
}

/** The key file's content, checked; throws ATTACHE_CACHE_KEY when malformed. */
function parseKeyFile(path: string, text: string): KeyFile {
  let file: Partial<KeyFile>;
  try {
    file = JSON.parse(text) as Partial<KeyFile>;
  } catch (err) {
    throw keyError(path, 'is not JSON', err);
  }
  if (file === null || typeof file !== 'object' || file.version !== 1) {
    throw keyError(path, 'is not a version 1 key file');
  }
  const { keys, current } = file;
  if (keys === null || typeof keys !== 'object' || Object.keys(keys).length === 0) {
    throw keyError(path, '"keys" must hold at least one key');
  }
  for (const [id, key] of Object.entries(keys)) {
    if (!idPattern.test(id)) throw keyError(path, 'a key id must be 1-64 of [A-Za-z0-9._-]');
    if (typeof key !== 'string' || !base64Pattern.test(key)) {
      throw keyError(path, `key ${id} is not 32 bytes of base64`);
    }
  }
  if (typeof current !== 'string' || !Object.hasOwn(keys, current)) {
    throw keyError(path, '"current" must name one of "keys"');
  }
  return { version: 1, current, keys };
}

function keyringOf(file: KeyFile): CacheKeyring {
  const keys = new Map(Object.entries(file.keys).map(([id, b64]) => [id, Buffer.from(b64, 'base64')]));
  const [indexId = file.current] = keys.keys();
  return { currentId: file.current, indexId, key: (id) => keys.get(id) };
}

/** Reads and checks the key file; undefined when it does not exist. */
async function readKeyFile(path: string): Promise<KeyFile | undefined> {
  let text: string;
  try {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      throw keyError(path, `mode ${(mode & 0o777).toString(8)} grants access to group or others (want 600)`);
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof GatewayError) throw err;
    throw keyError(path, 'cannot be read', err);
  }
  return parseKeyFile(path, text);
}

async function fsyncPath(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `file` to a fresh temporary file (mode 0600) beside `path`, fsynced, then either renames
 * it over `path` or, with `noClobber`, links it to `path` (EEXIST when `path` appeared meanwhile);
 * then fsyncs the directory.
 */
async function writeKeyFile(path: string, file: KeyFile, noClobber: boolean): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(file)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (noClobber) {
      await link(temp, path);
      await unlink(temp);
    } else {
      await rename(temp, path);
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncPath(dirname(path), 'r');
}

/**
 * Loads the key file at `path`, or creates it (mode 0600, its directory 0700 when created) with
 * one fresh random 256-bit key `k1` when missing. File format: JSON
 * `{"version":1,"current":"<id>","keys":{"<id>":"<base64 of 32 bytes>", ...}}`.
 * Rejects ATTACHE_CACHE_KEY when the file grants any permission to group or others, is malformed,
 * or cannot be read or written.
 */
export async function loadOrCreateKeyring(path: string): Promise<CacheKeyring> {
  if (typeof path !== 'string' || path === '') throw new TypeError('"path" must be a non-empty string');
  const found = await readKeyFile(path);
  if (found) return keyringOf(found);
  const file: KeyFile = { version: 1, current: 'k1', keys: { k1: randomBytes(32).toString('base64') } };
  try {
    await mkdirDurably(dirname(path));
    await writeKeyFile(path, file, true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw keyError(path, 'cannot be created', err);
    return loadOrCreateKeyring(path); // another process created it first
  }
  return keyringOf(file);
}

/**
 * The keyring of the key file at `path`, undefined when there is none; creates nothing. Rejects
 * ATTACHE_CACHE_KEY as {@link loadOrCreateKeyring} does for an unsafe, malformed or unreadable file.
 */
export async function readKeyring(path: string): Promise<CacheKeyring | undefined> {
  const found = await readKeyFile(path);
  return found && keyringOf(found);
}

/**
 * Adds a fresh random 256-bit key to the key file at `path` and makes it current; older keys stay,
 * so values sealed with them remain readable. Rewrites the file atomically (temporary file, fsync,
 * rename, fsync of the directory). Resolves with the new id (`k<n+1>`). Rejects ATTACHE_CACHE_KEY
 * when the file is missing, unsafe or malformed, or cannot be written. Not safe against a
 * concurrent rotation of the same file.
 */
export async function rotateKeyring(path: string): Promise<string> {
  if (typeof path !== 'string' || path === '') throw new TypeError('"path" must be a non-empty string');
  const file = await readKeyFile(path);
  if (!file) throw keyError(path, 'does not exist');
  const numbers = Object.keys(file.keys).map((id) => Number(/^k(\d+)$/.exec(id)?.[1] ?? 0));
  const id = `k${Math.max(0, ...numbers) + 1}`;
  const next: KeyFile = {
    ...file,
    current: id,
    keys: { ...file.keys, [id]: randomBytes(32).toString('base64') },
  };
  try {
    await writeKeyFile(path, next, false);
  } catch (err) {
    throw keyError(path, 'cannot be rewritten', err);
  }
  return id;
}
