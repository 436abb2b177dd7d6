import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, readlink, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { GatewayError, syncDir, writeDurably } from '@attache/core';
import { switchSymlink } from './atomic-file.js';
import { extractBundle } from './bundle-extract.js';
import { compareVersions, type JobManifest, verifySignedManifest, versionPattern } from './job-manifest.js';
import { JobStatusError, rejected } from './job-status-error.js';

/**
 * What the service asks the root release installer, as one JSON line before the bundle's bytes:
 * the job execution (for the log) and the job's signed manifest with its signature. Nothing else
 * of the document: the manifest names the version, the bundle's SHA-256 and size, the target and
 * the expiry, and only what it says is acted on.
 */
export interface ReleaseInstallRequest {
  jobId: string;
  executionNumber: number;
  manifest: string;
  signature: string;
}

/** The root release installer's answer (one JSON line). */
export type ReleaseInstallAnswer =
  | { ok: true; version: string; release: string; previous?: string; note?: string }
  /** `retry`: not the job's fault (a full disk, an I/O error): the service asks again in a later window. */
  | { ok: false; code: string; reason: string; retry?: boolean };

/** Options of {@link installReleaseAsRoot}. */
export interface RootReleaseInstallOptions {
  /** The install root, root's: `current`, `previous` and `releases/<version>` (symlinks to the store). */
  root: string;
  /** Where releases are unpacked, root's: `<store>/<version>`. */
  store: string;
  /** The job-signing public key (PEM). */
  publicKeyPem: string;
  /** This box's thing name and thing groups, as provisioning recorded them. */
  thingName: string;
  thingGroups: readonly string[];
  now?: () => number;
  /** A line for the journal. */
  log?: (line: string) => void;
}

/** At most this long a request line (the manifest is a few hundred bytes). */
const maxRequestBytes = 64 * 1024;
/** Written last into a release: a directory without it is incomplete. */
const marker = '.release.json';

/** Reads the request line, then hands on the rest of the stream. */
async function readRequest(input: AsyncIterator<Buffer>): Promise<{ line: string; rest: Buffer }> {
  let buffer: Buffer = Buffer.alloc(0);
  for (;;) {
    const newline = buffer.indexOf(0x0a);
    if (newline !== -1)
      return { line: buffer.toString('utf8', 0, newline), rest: buffer.subarray(newline + 1) };
    if (buffer.length > maxRequestBytes)
      throw rejected('ATTACHE_MALFORMED', 'the install request is too long');
    const next = await input.next();
    if (next.done) throw rejected('ATTACHE_MALFORMED', 'the install request ended before its first line');
    buffer = Buffer.concat([buffer, next.value]);
  }
}

function parseRequest(line: string): ReleaseInstallRequest {
  let value: Partial<ReleaseInstallRequest>;
  try {
    value = JSON.parse(line) as Partial<ReleaseInstallRequest>;
  } catch {
    throw rejected('ATTACHE_MALFORMED', 'the install request is not JSON');
  }
  if (
    typeof value?.jobId !== 'string' ||
    !Number.isSafeInteger(value.executionNumber) ||
    typeof value.manifest !== 'string' ||
    typeof value.signature !== 'string'
  ) {
    throw rejected(
      'ATTACHE_MALFORMED',
      'the install request lacks jobId, executionNumber, manifest or signature',
    );
  }
  return value as ReleaseInstallRequest;
}

async function linkTarget(path: string): Promise<string | undefined> {
  return readlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

/** The version a release link (`releases/<version>`) names, when it names one. */
function versionOf(release: string | undefined): string | undefined {
  const match = /^releases\/([^/]+)$/.exec(release ?? '');
  return match?.[1];
}

/** The `.release.json` of a release in the store; undefined when it has none (incomplete). */
async function releaseMarker(dir: string): Promise<{ sha256?: string; installedAt?: string } | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, marker), 'utf8')) as { sha256?: string; installedAt?: string };
  } catch {
    return undefined;
  }
}

/**
 * Receives the bundle's bytes into a new root-only file in the store (O_EXCL, 0600), hashing them as
 * written: what is verified and unpacked later is this copy, which nobody else can change.
 */
async function receive(
  first: Buffer,
  input: AsyncIterator<Buffer>,
  file: string,
  manifest: JobManifest,
): Promise<void> {
  const handle = await open(
    file,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  const hash = createHash('sha256');
  let size = 0;
  try {
    for (let chunk: Buffer | undefined = first; chunk !== undefined; ) {
      size += chunk.length;
      if (size > manifest.size) {
        throw rejected(
          'ATTACHE_MALFORMED',
          `wrong size: more than the ${manifest.size} bytes the signed manifest names`,
        );
      }
      hash.update(chunk);
      await handle.write(chunk);
      const next = await input.next();
      chunk = next.done ? undefined : next.value;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (size !== manifest.size) {
    throw rejected(
      'ATTACHE_MALFORMED',
      `wrong size: ${size} bytes, the signed manifest names ${manifest.size}`,
    );
  }
  if (hash.digest('hex') !== manifest.sha256) {
    throw rejected(
      'ATTACHE_MALFORMED',
      'wrong hash: the bundle does not match the SHA-256 of its signed manifest',
    );
  }
}

/**
 * Removes from the store and the install root every release but the ones `keep` names and the
 * image's own (marked `installedAt: image`), so that updates never fill the card.
 */
async function prune(options: RootReleaseInstallOptions, keep: Set<string>): Promise<string[]> {
  const pruned: string[] = [];
  for (const name of await readdir(options.store)) {
    if (keep.has(name)) continue;
    const dir = join(options.store, name);
    if (!name.startsWith('.') && (await releaseMarker(dir))?.installedAt === 'image') continue;
    await rm(join(options.root, 'releases', name), { force: true });
    await rm(dir, { recursive: true, force: true });
    if (!name.startsWith('.')) pruned.push(name);
  }
  return pruned;
}

/**
 * The root side of a software update, run by root for one request of the service (the
 * `attache-release-install@.service` instance of a connection to its socket): reads the request line
 * and the bundle's bytes from `input`, and checks everything again without trusting the service:
 * the manifest's signature under the root-owned job-signing key, that it is a software update for
 * this box's thing (or one of its groups, as provisioning recorded them) not yet expired, a semantic
 * version not older than the release `current` names (unless signed as a rollback); then the bundle,
 * copied first into a root-only file, against the manifest's size and SHA-256; then unpacks it into
 * `<store>/<version>` (only files and directories, root's: see {@link extractBundle}), links it as
 * `<root>/releases/<version>`, points `previous` at the running release and switches `current`
 * (atomic renames). A refusal changes nothing. Resolves with the answer for the service.
 */
export async function installReleaseAsRoot(
  input: Readable,
  options: RootReleaseInstallOptions,
): Promise<ReleaseInstallAnswer> {
  const log = options.log ?? (() => undefined);
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let incoming: string | undefined;
  let partial: string | undefined;
  try {
    const { line, rest } = await readRequest(chunks);
    const request = parseRequest(line);
    const manifest = verifySignedManifest(request.manifest, request.signature, options.publicKeyPem, {
      thingName: options.thingName,
      thingGroups: options.thingGroups,
      now: options.now ?? Date.now,
    });
    if (manifest.operation !== 'software-update') {
      throw rejected(
        'ATTACHE_MALFORMED',
        `the manifest is for a ${manifest.operation}, not a software update`,
      );
    }
    const { version } = manifest;
    if (!versionPattern.test(version)) {
      throw rejected(
        'ATTACHE_MALFORMED',
        `the release version ${JSON.stringify(version)} is not a semantic version`,
      );
    }
    log(
      `job ${request.jobId} (execution ${request.executionNumber}): release ${version}, signature verified`,
    );
    const release = `releases/${version}`;
    const running = await linkTarget(join(options.root, 'current'));
    const runningVersion = versionOf(running);
    if (
      runningVersion !== undefined &&
      manifest.rollback !== true &&
      compareVersions(version, runningVersion) < 0
    ) {
      throw rejected(
        'ATTACHE_JOB_REFUSED',
        `downgrade refused: ${version} is older than the running ${runningVersion} and the signed manifest does not say rollback`,
      );
    }
    const final = join(options.store, version);
    if (running === release) {
      if ((await releaseMarker(final)) === undefined) {
        throw new GatewayError(
          'ATTACHE_INTERNAL',
          `release ${version} is running but incomplete in ${options.store}`,
        );
      }
      return { ok: true, version, release, note: 'already running' };
    }
    await mkdir(options.store, { recursive: true, mode: 0o755 });
    incoming = join(options.store, `.incoming-${randomBytes(6).toString('hex')}`);
    await receive(rest, chunks, incoming, manifest);
    partial = join(options.store, `.${version}.partial`);
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { mode: 0o700 });
    const unpacked = await extractBundle(incoming, partial);
    await writeDurably(
      join(partial, marker),
      `${JSON.stringify({ version, sha256: manifest.sha256, jobId: request.jobId, installedAt: new Date().toISOString() })}\n`,
    );
    await open(partial, 'r').then(async (dir) => {
      await dir.chmod(0o755);
      await dir.sync();
      await dir.close();
    });
    await rm(final, { recursive: true, force: true });
    await rename(partial, final);
    partial = undefined;
    await syncDir(options.store);
    await mkdir(join(options.root, 'releases'), { recursive: true, mode: 0o755 });
    await switchSymlink(join(options.root, release), final);
    if (running !== undefined) await switchSymlink(join(options.root, 'previous'), running);
    await switchSymlink(join(options.root, 'current'), release);
    log(
      `release ${version} installed (${unpacked.files} files, ${unpacked.bytes} bytes) and switched to, from ${running ?? 'none'}`,
    );
    const pruned = await prune(
      options,
      new Set([version, versionOf(running)].filter((v) => v !== undefined)),
    );
    if (pruned.length > 0) log(`old releases removed: ${pruned.join(', ')}`);
    return { ok: true, version, release, ...(running === undefined ? {} : { previous: running }) };
  } catch (err) {
    if (err instanceof JobStatusError) {
      log(`refused: ${err.reason}`);
      return { ok: false, code: err.code, reason: err.reason };
    }
    if (
      err instanceof GatewayError &&
      (err.code === 'ATTACHE_UNSAFE_FILE' || err.code === 'ATTACHE_MALFORMED')
    ) {
      log(`refused: ${err.message}`);
      return { ok: false, code: err.code, reason: err.message };
    }
    const reason = err instanceof Error ? err.message : String(err);
    log(`failed: ${reason}`);
    return { ok: false, code: 'ATTACHE_INTERNAL', reason, retry: true };
  } finally {
    if (incoming !== undefined) await rm(incoming, { force: true });
    if (partial !== undefined) await rm(partial, { recursive: true, force: true });
  }
}

/**
 * Reads a file only this process's user (root, for the appliance's installer) may have written:
 * owned by it, no group or other write bit, in a directory likewise, and not a symlink. Throws
 * ATTACHE_UNSAFE_FILE otherwise: a key or record the service's user could replace would let it
 * choose what the installer accepts.
 */
export async function readOwnFile(path: string): Promise<string> {
  const self = process.getuid?.();
  for (const file of [path, dirname(path)]) {
    const info = await lstat(file);
    if (info.isSymbolicLink() || info.uid !== self || (info.mode & 0o022) !== 0) {
      throw new GatewayError(
        'ATTACHE_UNSAFE_FILE',
        `${file} must be owned by uid ${self} and writable by no one else (owner uid ${info.uid}, mode ${(info.mode & 0o777).toString(8)}${info.isSymbolicLink() ? ', a symlink' : ''})`,
      );
    }
  }
  return readFile(path, 'utf8');
}
