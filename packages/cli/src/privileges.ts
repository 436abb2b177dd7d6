import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
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
 * Becomes the data directory's owner for good when run as root and the directory is someone else's,
 * before touching it: a file a root command created or rewrote there (LevelDB's CURRENT, a rotated
 * key file) would be root's, 0600 under umask 077, and the service could no longer read it (it would
 * fail with EACCES and restart forever). Resolves when nothing changes (not root, or root's
 * directory). Otherwise the same command runs again as the owner, under util-linux's
 * `setpriv` (the owner's groups, or its own group when it has no passwd entry), and this process
 * ends with its exit status: it never resolves then. Node cannot drop privileges in a running
 * process where it is linked to a libuv that may use io_uring (Debian's Node 20, the image's: it
 * refuses setuid and setgroups, CVE-2024-22017), and a fresh process holds nothing of root's.
 */
export async function becomeDataDirOwner(dataDir: string): Promise<void> {
  const owner = await switchTarget(dataDir);
  if (owner) process.exit(await rerunAs(owner));
}

/** The exit status of this command run again as `owner`; SIGTERM and SIGHUP are passed on to it. */
async function rerunAs(owner: Owner): Promise<number> {
  const groups = (await hasPasswdEntry(owner.uid)) ? ['--init-groups'] : [`--groups=${owner.gid}`];
  const child = spawn(
    'setpriv',
    [
      `--reuid=${owner.uid}`,
      `--regid=${owner.gid}`,
      ...groups,
      '--',
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit' },
  );
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  // A terminal's Ctrl-C reaches the whole process group, the command included: nothing to pass on.
  const ignore = () => undefined;
  process.on('SIGTERM', forward).on('SIGHUP', forward).on('SIGINT', ignore);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return code ?? 128 + (signal ? osConstants.signals[signal] : 0);
}

/** True when `uid` has an entry in the system's user database (`getent passwd`). */
async function hasPasswdEntry(uid: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('getent', ['passwd', String(uid)], (err) => resolve(err === null));
  });
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
  try {
    process.setgroups?.([owner.gid]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_INVALID_STATE') throw err;
    // Refused before anything changed, by a Node linked to a libuv that may use io_uring (CVE-2024-22017).
    throw new Error(
      `this Node.js cannot take the data directory's owner's ids (uid ${owner.uid}) for part of a command: run the command as that user (runuser -u USER -- attache ...); \`cache export\` also works while the gateway runs`,
    );
  }
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
