import { randomBytes } from 'node:crypto';
import { rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { syncDir } from '@attache/core';

function tmpBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Points the symlink `path` at `target` atomically (a new link renamed over the old one): a reader
 * always sees the old target or the new one, never a missing link.
 */
export async function switchSymlink(path: string, target: string): Promise<void> {
  const tmp = tmpBeside(path);
  await symlink(target, tmp);
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}
