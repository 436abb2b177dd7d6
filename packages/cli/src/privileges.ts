import { type ChildProcessByStdio, execFile, type Serializable, spawn } from 'node:child_process';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ErrorCode, GatewayError } from '@attache/core';

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
  const child = spawn('setpriv', await asOwnerArgs(owner), { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  // A terminal's Ctrl-C reaches the whole process group, the command included: nothing to pass on.
  const ignore = () => undefined;
  process.on('SIGTERM', forward).on('SIGHUP', forward).on('SIGINT', ignore);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return code ?? 128 + (signal ? osConstants.signals[signal] : 0);
}

/**
 * `setpriv`'s arguments that start this command again (same Node, flags and arguments) as
 * `owner`: with the owner's groups, or its own group only when it has no passwd entry.
 */
async function asOwnerArgs(owner: Owner): Promise<string[]> {
  const groups = (await hasPasswdEntry(owner.uid)) ? ['--init-groups'] : [`--groups=${owner.gid}`];
  return [
    `--reuid=${owner.uid}`,
    `--regid=${owner.gid}`,
    ...groups,
    '--',
    process.execPath,
    ...process.execArgv,
    ...process.argv.slice(1),
  ];
}

/** True when `uid` has an entry in the system's user database (`getent passwd`). */
async function hasPasswdEntry(uid: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('getent', ['passwd', String(uid)], (err) => resolve(err === null));
  });
}

/** What a command's part as the data directory's owner reads, writes and reports. */
export interface OwnerPartIo {
  /** Bytes from the root part (its {@link OwnerPartOptions.input}). */
  input: Readable;
  /** Bytes to the root part ({@link OwnerPartRun.output}). */
  output: Writable;
  /** Passes a progress event (structured-clonable) to the root part's `onEvent`. */
  notify(event: unknown): void;
}

/**
 * The part of a command that opens the data directory: `params` and what it resolves with are
 * structured-clonable (they may cross to another process); it must not write on standard output.
 */
export type OwnerPart<P, R> = (params: P, io: OwnerPartIo) => Promise<R>;

/** How the root part talks to its part as the owner. */
export interface OwnerPartOptions {
  /** Bytes for the part's `input` (default: none, its input ends at once). */
  input?: Readable;
  /** Receives the part's progress events. */
  onEvent?: (event: unknown) => void;
}

/** A running part as the data directory's owner, as the root part sees it. */
export interface OwnerPartRun<R> {
  /** The bytes the part writes: read them to the end (the part waits while they are not read). */
  output: Readable;
  /**
   * What the part resolved with, once it ended. Rejects with its error (same code and message), with
   * the error of `input` when that failed, or when the part's process ended without an answer.
   */
  result: Promise<R>;
}

/** Names the part the process started by {@link runOwnerPart} is for. */
const partVariable = 'ATTACHE_OWNER_PART';

type Answer = { result: unknown } | { error: { message: string; code?: string } };

/**
 * Runs `part` as the data directory's owner when this process runs as root and someone else owns
 * it; in this process otherwise. For a command that must open the data directory as the service
 * would (what it writes there must stay the service's) and read or write where only root may (a
 * USB stick): the part runs in a fresh process started under `setpriv` as the owner, which holds
 * nothing of root's, and only bytes, params and the result cross between the two (its input and
 * output over pipes, the rest over an IPC channel). Node cannot change ids in a running process
 * where it is linked to a libuv that may use io_uring (Debian's Node 20, CVE-2024-22017). The new
 * process runs this command again with {@link partVariable} naming the part: the command's handler
 * must be wrapped in {@link servingOwnerParts} with `part` among its parts, under `name`.
 */
export async function runOwnerPart<P, R>(
  dataDir: string,
  name: string,
  part: OwnerPart<P, R>,
  params: P,
  options: OwnerPartOptions = {},
): Promise<OwnerPartRun<R>> {
  const owner = await switchTarget(dataDir);
  return owner ? ownerProcess(owner, name, params, options) : inProcess(part, params, options);
}

/** Feeds `source` (when given) into `sink`; resolves with the error of `source`, if it fails. */
function feed(source: Readable | undefined, sink: Writable): Promise<Error | undefined> {
  // An error of `sink` (EPIPE: the part ended before it read everything) is the part's to explain.
  sink.on('error', () => undefined);
  if (!source) {
    sink.end();
    return Promise.resolve(undefined);
  }
  let failed: Error | undefined;
  source.on('error', (err) => {
    failed ??= err;
  });
  return pipeline(source, sink).then(
    () => undefined,
    () => failed,
  );
}

function inProcess<P, R>(part: OwnerPart<P, R>, params: P, options: OwnerPartOptions): OwnerPartRun<R> {
  const input = new PassThrough();
  const output = new PassThrough();
  const fed = feed(options.input, input);
  const ran = part(params, { input, output, notify: (event) => options.onEvent?.(event) }).finally(() => {
    if (!output.writableEnded) output.end();
    input.destroy();
  });
  return { output, result: settle(ran, fed) };
}

/** `ran`'s outcome, unless feeding the part failed on the input's side: then that error. */
async function settle<R>(ran: Promise<R>, fed: Promise<Error | undefined>): Promise<R> {
  const [outcome, inputError] = await Promise.all([
    ran.then(
      (value) => ({ value }),
      (err: unknown) => ({ err }),
    ),
    fed,
  ]);
  if (inputError) throw inputError;
  if ('err' in outcome) throw outcome.err;
  return outcome.value;
}

function ownerProcess<R>(
  owner: Owner,
  name: string,
  params: unknown,
  options: OwnerPartOptions,
): OwnerPartRun<R> {
  const output = new PassThrough();
  const ran = (async () => {
    const child = spawn('setpriv', await asOwnerArgs(owner), {
      stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, [partVariable]: name },
    }) as ChildProcessByStdio<Writable, Readable, null>;
    // A failed start (no setpriv) rejects `exited`; a later error (a send to it) changes nothing.
    child.on('error', () => undefined);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    // The root part stopped reading (its write failed): the part has nobody to write for.
    pipeline(child.stdout, output).catch(() => child.kill());
    const fed = feed(options.input, child.stdin);
    let answer: Answer | undefined;
    child.on('message', (message: { event: unknown } | Answer) => {
      if ('event' in message) options.onEvent?.(message.event);
      else answer = message;
    });
    child.send(params as Serializable);
    const [code, signal] = await exited;
    if (child.connected) await once(child, 'disconnect');
    const ended = answerOf<R>(answer, owner, signal ?? `exit status ${code}`);
    return settle(ended, fed);
  })();
  ran.catch(() => {
    if (!output.writableEnded) output.end();
  });
  return { output, result: ran };
}

/** The part's result as the root part sees it: its answer, or why there is none. */
async function answerOf<R>(answer: Answer | undefined, owner: Owner, end: string): Promise<R> {
  if (answer && 'result' in answer) return answer.result as R;
  if (answer) {
    const { code, message } = answer.error;
    throw code ? new GatewayError(code as ErrorCode, message) : new Error(message);
  }
  throw new Error(
    `the part of this command that runs as the data directory's owner (uid ${owner.uid}) ended (${end}) before it finished`,
  );
}

/**
 * A command handler that, in a process {@link runOwnerPart} started, runs the part it names (one of
 * `parts`) and answers over the IPC channel instead of running `handler`.
 */
export function servingOwnerParts<A>(
  parts: Record<string, OwnerPart<never, unknown>>,
  handler: (args: A) => Promise<void>,
): (args: A) => Promise<void> {
  return (args) => {
    const name = process.env[partVariable];
    const send = process.send?.bind(process);
    if (name === undefined || !send) return handler(args);
    return serve(parts[name], send);
  };
}

async function serve(part: OwnerPart<never, unknown> | undefined, send: NonNullable<typeof process.send>) {
  // The root part is gone (killed, or its terminal closed): nothing would read what follows.
  process.on('disconnect', () => process.exit(1));
  if (!process.connected) process.exit(1);
  const [params] = (await once(process, 'message')) as [never];
  let answer: Answer;
  try {
    if (!part) throw new TypeError(`${process.env[partVariable]} names no part of this command`);
    answer = {
      result: await part(params, {
        input: process.stdin,
        output: process.stdout,
        notify: (event) => send({ event }),
      }),
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    answer = { error: err instanceof GatewayError ? { code: err.code, message } : { message } };
  }
  send(answer, () => process.exit('result' in answer ? 0 : 1));
}
