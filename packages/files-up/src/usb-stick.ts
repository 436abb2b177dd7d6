// A USB stick's FAT filesystem, read and written in user space with mtools straight from its block
// device (or an image of it): never mounted, so nothing on it is executed and the kernel's
// filesystem code never parses it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { GatewayError } from '@attache/core';

const mtoolsEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  MTOOLS_SKIP_CHECK: '1',
});

/**
 * Runs an mtools command (`mdir`, `mcopy`, …); resolves its stdout, rejects ATTACHE_MALFORMED with
 * its stderr's first line. `input`, when given, is piped to its stdin.
 */
export function mtools(args: string[], input?: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0] as string, args.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: mtoolsEnv(),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    // mtools may stop reading early (a full stick): the broken pipe is its exit status's to report.
    child.stdin.on('error', () => undefined);
    if (input) input.pipe(child.stdin);
    else child.stdin.end();
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else {
        const reason = Buffer.concat(err).toString('utf8').trim().split('\n')[0]?.slice(0, 200);
        reject(new GatewayError('ATTACHE_MALFORMED', `${args[0]} failed: ${reason}`));
      }
    });
  });
}

/** Spawns an mtools command with its stdout to read (a file copied out with `mcopy … -`). */
export function mtoolsStream(args: string[]) {
  return spawn(args[0] as string, args.slice(1), {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: mtoolsEnv(),
  });
}

/** The names (`::/dir/file`) of the regular files on a FAT filesystem, every folder included. */
export async function stickFiles(device: string): Promise<string[]> {
  // mdir -b fails on an empty filesystem (`File "::" not found`): asked only of one that has files.
  const summary = await mtools(['mdir', '-i', device, '::']);
  if (/^No files$/m.test(summary)) return [];
  const listing = await mtools(['mdir', '-i', device, '-/', '-b', '::']);
  return listing.split('\n').filter((line) => line.startsWith('::/') && !line.endsWith('/'));
}

/** Bytes free on the FAT filesystem at `device`. */
async function bytesFree(device: string): Promise<number> {
  const listing = await mtools(['mdir', '-i', device, '::']);
  const line = listing.split('\n').find((l) => l.trim().endsWith('bytes free'));
  // mdir groups digits with spaces (`1 976 320 bytes free`).
  return Number((line ?? '').replace(/[^0-9]/g, '') || 0);
}

const absentCodes = new Set(['ENOENT', 'ENXIO', 'ENODEV', 'ENOMEDIUM', 'ENOTDIR']);
const readOnlyCodes = new Set(['EACCES', 'EPERM', 'EROFS']);

/** How a copy to the stick is going: bytes written of the file's size. */
export interface StickProgress {
  bytes: number;
  totalBytes: number;
}

/**
 * Copies `source` onto the FAT stick at `device` as `name` (in its root folder), never over a file
 * there: when `name` is taken, `-1`, `-2`, … is added before its extension. Resolves with the name
 * written and the SHA-256 (hex) of the bytes given to mcopy. Refuses with ATTACHE_NO_STICK when there is no stick (or no FAT filesystem on it) and
 * ATTACHE_STICK_REFUSED when it is read-only or has no room; nothing of the file is left on it then.
 */
export async function copyToStick(
  device: string,
  source: string,
  name: string,
  onProgress: (progress: StickProgress) => void = () => undefined,
): Promise<{ name: string; sha256: string }> {
  try {
    // Opened for writing first: what the errno says is clearer than mtools' message.
    await (await open(device, 'r+')).close();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (absentCodes.has(code))
      throw new GatewayError('ATTACHE_NO_STICK', `no USB stick at ${device}: plug one in`);
    if (readOnlyCodes.has(code)) {
      throw new GatewayError('ATTACHE_STICK_REFUSED', `the USB stick at ${device} is read-only (${code})`);
    }
    throw err;
  }
  let taken: Set<string>;
  let free: number;
  try {
    taken = new Set((await stickFiles(device)).map((f) => f.slice(3).toLowerCase()));
    free = await bytesFree(device);
  } catch {
    throw new GatewayError(
      'ATTACHE_NO_STICK',
      `the USB stick at ${device} has no FAT filesystem: use a FAT stick`,
    );
  }
  const totalBytes = (await stat(source)).size;
  if (totalBytes > free) {
    throw new GatewayError(
      'ATTACHE_STICK_REFUSED',
      `the USB stick at ${device} is full: ${totalBytes} bytes needed, ${free} free`,
    );
  }
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  let target = name;
  for (let n = 1; taken.has(target.toLowerCase()); n++) target = `${stem}-${n}${ext}`;

  const input = createReadStream(source);
  const hash = createHash('sha256');
  let bytes = 0;
  input.on('data', (chunk) => {
    hash.update(chunk);
    bytes += chunk.length;
    onProgress({ bytes, totalBytes });
  });
  try {
    await mtools(['mcopy', '-i', device, '-D', 's', '-', `::/${target}`], input);
  } catch (err) {
    input.destroy();
    // mcopy removes what it wrote when the stick fills up; this also covers any other failure.
    await mtools(['mdel', '-i', device, `::/${target}`]).catch(() => undefined);
    throw new GatewayError(
      'ATTACHE_STICK_REFUSED',
      `the USB stick at ${device} refused the file: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return { name: target, sha256: hash.digest('hex') };
}
