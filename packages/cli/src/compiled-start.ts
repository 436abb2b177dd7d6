import {
  chmodSync,
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { debuglog } from 'node:util';
import { constants, Script } from 'node:vm';

// The shipped release starts a short command from a CommonJS bundle of the CLI (scripts/bundle.mjs)
// with V8's code cache for it: V8 then neither parses nor compiles what the cache holds, which was
// most of a command's start (bench/README.md, "Command start"). A cache holds the code one run
// compiled, so there is one per kind of command (`cli.cjs.<profile>.cache`), each made by running
// such a command on a throw-away config (`attache --write-code-cache`). `config`, `status` and
// `modbus` each start from a bundle that holds only their own command group (`cli-<profile>.cjs`):
// V8 deserializes all of a cache, and a cache holds every function of its script that the compiled
// code names, so a smaller script is a smaller cache. Everything else starts from `cli.cjs`, the
// whole CLI.
//
// A cache is executable code: it is used only when it is a regular file of its bundle's owner that
// nobody else may write (code-cache-writer.ts; where the box gets it: image-build/README.md), made by
// this very Node (version, platform, architecture, V8) from this very bundle (its SHA-256, which
// scripts/bundle.mjs puts in place of `__ATTACHE_CLI_DIGESTS__`). Anything else (no bundle, as in
// the development tree; no cache; one from another Node after an upgrade; one anyone else could
// have written) starts the ES modules as before. `NODE_DEBUG=attache-start` says which way it went.

declare const __ATTACHE_CLI_DIGESTS__: Record<Profile, string>;

/** Where a release's bundles are and their SHA-256 (undefined in the development tree: no bundle). */
export interface BundleAt {
  dir: string;
  digests: Readonly<Record<Profile, string>> | undefined;
}

/** This release's: the bundles beside this file, their digests put here by scripts/bundle.mjs. */
export const thisRelease: BundleAt = {
  dir: dirname(fileURLToPath(import.meta.url)),
  digests: typeof __ATTACHE_CLI_DIGESTS__ === 'object' ? __ATTACHE_CLI_DIGESTS__ : undefined,
};
const log = debuglog('attache-start');

/**
 * The commands whose start a cache is made for, each by the command run on a throw-away config
 * (`{config}`) and against a Modbus TCP server of the writer's own (`{port}`), both filled in by
 * writeCodeCaches, so that the cache holds the code of a read that succeeds; `other` (help) for the rest.
 */
export const profiles = {
  config: ['config', 'validate', '--config', '{config}'],
  status: ['status', '--config', '{config}'],
  modbus: ['modbus', 'read', '--bus', 'tcp://127.0.0.1:{port}', '--ref', '40001', '--timeout', '2000'],
  other: ['--help'],
} as const;
export type Profile = keyof typeof profiles;

/**
 * The bundle each profile starts from: `other` the whole CLI; the rest only the command group of the
 * same name (cli.ts loads only that group when the command line starts with its name).
 */
export const bundleNames: Readonly<Record<Profile, string>> = {
  config: 'cli-config.cjs',
  status: 'cli-status.cjs',
  modbus: 'cli-modbus.cjs',
  other: 'cli.cjs',
};
export const bundleFile = (at: BundleAt, profile: Profile) => join(at.dir, bundleNames[profile]);

/** The cache a command starts with. */
export function profileOf(command: string | undefined): Profile {
  return command === 'config' || command === 'modbus' || command === 'status' ? command : 'other';
}

/** Where the cache of `profile` is. */
export const cacheFileOf = (profile: Profile, at: BundleAt = thisRelease): string =>
  join(at.dir, `cli.cjs.${profile}.cache`);

/** The first line of a cache file: what it was made by and from. */
export function cacheHeader(profile: Profile, at: BundleAt = thisRelease): string {
  const { node, v8 } = process.versions;
  return `attache-code-cache 1 node-${node} ${process.platform}-${process.arch} v8-${v8} ${at.digests?.[profile]}\n`;
}

/** What the bundle exports (cli.ts). */
interface Cli {
  main(): Promise<void>;
}

/**
 * Compiles the bundle of `profile` (with `cachedData` when given) and runs its top: its exports and its V8
 * script. The bundle is ASCII (scripts/bundle.mjs makes it so), so it is read as latin1: no UTF-8
 * decoding, and V8 keeps a one-byte string.
 */
export function loadBundle(
  at: BundleAt,
  profile: Profile,
  cachedData?: Buffer,
): { cli: Cli; script: Script } {
  const file = bundleFile(at, profile);
  const source = readFileSync(file, 'latin1');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData === undefined ? {} : { cachedData }),
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as Cli };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, at.dir);
  return { cli: module.exports, script };
}

/**
 * The code cache of `profile`, when it may be used: a regular file of the bundle's owner that nobody
 * else may write, with this Node's and this bundle's header. Why not, otherwise.
 */
export function readCache(at: BundleAt, profile: Profile): Buffer | string {
  if (at.digests === undefined) return 'no bundle (development tree)';
  const file = cacheFileOf(profile, at);
  let fd: number | undefined;
  try {
    const owner = statSync(bundleFile(at, profile)).uid;
    fd = openSync(file, 'r');
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.uid !== owner || (stat.mode & 0o022) !== 0)
      return `${file} is not the bundle owner's alone`;
    const data = readFileSync(fd);
    const header = cacheHeader(profile, at);
    if (data.subarray(0, header.length).toString('latin1') !== header)
      return `${file} was made by another Node or from another bundle`;
    return data.subarray(header.length);
  } catch (err) {
    return (err as Error).message;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A command started from the bundle: its promise, and whether V8 took the code cache. */
export interface CompiledStart {
  done: Promise<void>;
  cache: 'accepted' | 'rejected';
}

/**
 * The commands that run for good as services (attache.service, attache-console.service): they start
 * from the ES modules, so that they keep only the modules they load, not the whole bundle's source
 * and cache; their memory counts more than their start.
 */
const services = new Set(['run', 'console']);

/**
 * Starts the command (`argv[2]` on) from the bundle and its code cache, or returns undefined (nothing
 * run) when they cannot be used or the command is a service's: the caller then imports the ES modules.
 */
export function startCompiled(at: BundleAt = thisRelease, argv = process.argv): CompiledStart | undefined {
  const command = argv[2];
  if (command !== undefined && services.has(command)) return undefined;
  const profile = profileOf(command);
  const cache = readCache(at, profile);
  if (typeof cache === 'string') {
    log('ES modules: %s', cache);
    return undefined;
  }
  const { cli, script } = loadBundle(at, profile, cache);
  const taken = script.cachedDataRejected === true ? 'rejected' : 'accepted';
  log('bundle, code cache %s', taken);
  return { done: cli.main(), cache: taken };
}

/** Writes the code cache of `script` (compiled from `at`'s bundle of `profile`) for `profile`: atomically, 0644 whatever the umask. */
export function writeCodeCache(at: BundleAt, profile: Profile, script: Script): number {
  const file = cacheFileOf(profile, at);
  const temporary = `${file}.${process.pid}`;
  const data = Buffer.concat([Buffer.from(cacheHeader(profile, at), 'latin1'), script.createCachedData()]);
  try {
    writeFileSync(temporary, data, { mode: 0o600, flag: 'wx' });
    chmodSync(temporary, 0o644);
    renameSync(temporary, file);
  } finally {
    rmSync(temporary, { force: true });
  }
  return data.length;
}
