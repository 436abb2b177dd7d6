import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** fsyncs a directory, so the creations, renames and deletions in it survive a power cut. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * `mkdir -p` whose creations survive a power cut: each directory it created is fsynced into its
 * parent (a new directory's entry is only durable once its parent is fsynced, and nothing written
 * inside it later is reachable without that entry).
 */
export async function mkdirDurably(path: string, mode = 0o700): Promise<void> {
  const first = await mkdir(path, { recursive: true, mode });
  if (first === undefined) return;
  for (let dir = path; ; dir = dirname(dir)) {
    await syncDir(dirname(dir));
    if (dir === first || dirname(dir) === dir) return;
  }
}

/** Options of {@link writeDurably}. */
export interface WriteDurablyOptions {
  /** The file's mode, exactly (not masked by the umask). Default 0600. */
  mode?: number;
  /** Where the temporary file is made; it must be on the same filesystem. Default: beside `path`. */
  tmpDir?: string;
}

/**
 * Writes `content` to `path` atomically: a temporary file, fsynced, renamed over `path`, then the
 * directory fsynced. After a crash the file holds its old or its new content, never a part. Rejects
 * with the fs error; the temporary file is removed.
 */
export async function writeDurably(
  path: string,
  content: string | Uint8Array,
  options: WriteDurablyOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const tmp = join(options.tmpDir ?? dirname(path), `.${randomBytes(8).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

/** Deletes `path` (a missing file is fine) and fsyncs its directory. */
export async function removeDurably(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await syncDir(dirname(path));
}

/** Whether `path` names anything (a file, a directory); false when it cannot be stat'ed. */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The JSON in `path`, or undefined when it is missing, unreadable or not JSON (a torn write). */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
