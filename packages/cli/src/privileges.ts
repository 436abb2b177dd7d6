import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A uid and gid. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * The owner of `path`, or of its nearest existing ancestor (a path under a file, ENOTDIR, counts as
 * missing: opening the data directory reports it later, through the log, as every start failure).
 */
async function ownerOf(path: string): Promise<Owner> {
  for (let at = path; ; at = dirname(at)) {
    try {
      const { uid, gid } = await stat(at);
      return { uid, gid };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || at === dirname(at)) throw err;
    }
  }
}

/**
 * The data directory's owner when this process runs as root and someone else owns it (the
 * appliance: the service runs as `attache`, the technician's commands as root); undefined otherwise.
 */
async function switchTarget(dataDir: string): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const owner = await ownerOf(dataDir);
  return owner.uid === 0 ? undefined : owner;
}

/**
 * Becomes the data directory's owner for good (supplementary groups, gid, then uid) when run as
 * root and the directory is someone else's, before touching it: a file a root command created or
 * rewrote there (LevelDB's CURRENT, a rotated key file) would be root's, 0600 under umask 077, and
 * the service could no longer read it (it would fail with EACCES and restart forever). Resolves
 * with the owner switched to, undefined when nothing changed (not root, or root's directory).
 */
export async function becomeDataDirOwner(dataDir: string): Promise<Owner | undefined> {
  const owner = await switchTarget(dataDir);
  if (!owner) return undefined;
  // Node has process.initgroups (POSIX) but its type declarations lack it.
  const posix = process as { initgroups?: (user: number, extraGroup: number) => void };
  try {
    posix.initgroups?.(owner.uid, owner.gid); // the owner's groups (dialout, for `run`)
  } catch {
    process.setgroups?.([owner.gid]); // a uid without a passwd entry: its own group only
  }
  process.setgid?.(owner.gid);
  process.setuid?.(owner.uid);
  return owner;
}

/**
 * Runs `fn` with the effective ids of the data directory's owner (when run as root and the
 * directory is someone else's), then switches back to root: for a command that must touch the data
 * directory as the service would and then write where only root may (an export onto a USB stick).
 */
export async function asDataDirOwner<T>(
  dataDir: string,
  fn: (owner: Owner | undefined) => Promise<T>,
): Promise<T> {
  const owner = await switchTarget(dataDir);
  if (!owner) return fn(undefined);
  const groups = process.getgroups?.() ?? [];
  process.setgroups?.([owner.gid]);
  process.setegid?.(owner.gid);
  process.seteuid?.(owner.uid);
  try {
    return await fn(owner);
  } finally {
    process.seteuid?.(0);
    process.setegid?.(0);
    process.setgroups?.(groups);
  }
}
