import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GatewayError } from '@attache/core';
import { isDiskFull } from './bounds.js';

/** An fs failure as ATTACHE_CACHE_FULL (full disk) or ATTACHE_CACHE_WRITE, with the fs error as cause. */
export function fsError(err: unknown, what: string): unknown {
  if (err instanceof GatewayError) return err;
  if (isDiskFull(err))
    return new GatewayError('ATTACHE_CACHE_FULL', `${what}: the disk is full`, { cause: err });
  return new GatewayError('ATTACHE_CACHE_WRITE', what, { cause: err });
}

/** fsyncs a directory, so the renames and deletions in it survive a power cut. */
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

/**
 * Writes `content` to `path` atomically: a temporary file in `tmpDir` (default: beside `path`; it
 * must be on the same filesystem), fsynced, renamed over `path`, then the directory fsynced. After a
 * crash the file holds its old or its new content. Mode 0600. Rejects with the fs error; the
 * temporary file is removed.
 */
export async function writeDurably(
  path: string,
  content: string | Uint8Array,
  tmpDir = dirname(path),
): Promise<void> {
  const tmp = join(tmpDir, `.${randomBytes(8).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(content);
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

/** Size and SHA-256 (hex) of a file, read as a stream. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}
