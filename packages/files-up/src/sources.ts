import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { GatewayError, isGatewayError, type Logger, nullLogger } from '@attache/core';
import type { UpStore } from './up-store.js';
import { mtoolsStream, stickFiles } from './usb-stick.js';

/** What one scan of a source did. */
export interface ScanReport {
  /** Files newly stored. */
  captured: number;
  /** Files whose content was taken before. */
  duplicates: number;
  /** Files the store refused (full, too large) or that could not be read. */
  refused: number;
  /** Entries that are not regular files (links, devices, pipes) or still being written: left alone. */
  skipped: number;
}

/** Options of {@link FolderSource}. */
export interface FolderSourceOptions {
  /** The folder a device writes to (an FTP or SMB share on the device-side interface). */
  path: string;
  /** The device whose files they are. */
  deviceId: string;
  store: UpStore;
  /** A file is taken once unchanged for this long, ms (it may still be being written; default 10,000). */
  settleMs?: number;
  /** Wall-clock time (default Date.now). */
  now?: () => number;
  /** Deepest folder level read below `path` (default 4). */
  maxDepth?: number;
  logger?: Logger;
}

const emptyReport = (): ScanReport => ({ captured: 0, duplicates: 0, refused: 0, skipped: 0 });

/**
 * A folder the device exports files to. Each `scan()` walks it and captures every regular file not
 * modified for `settleMs`; a file is taken once (by content hash, in the store), whatever its name.
 * Files are only read: never executed, interpreted, moved or deleted. Symbolic links, devices,
 * sockets and pipes are skipped, and files are opened with O_NOFOLLOW, so a link cannot make the
 * gateway read files outside the folder.
 */
export class FolderSource {
  readonly #options: FolderSourceOptions;
  readonly #log: Logger;
  /** path → `size:mtime` of files already taken or duplicates: not read again while unchanged. */
  readonly #known = new Map<string, string>();

  constructor(options: FolderSourceOptions) {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError('"path" must be a non-empty string');
    }
    this.#options = options;
    this.#log = (options.logger ?? nullLogger).child({
      module: 'files-up',
      source: `folder:${options.path}`,
    });
  }

  /** Walks the folder once; never rejects for one file (it is logged and counted). */
  async scan(): Promise<ScanReport> {
    const report = emptyReport();
    await this.#walk(this.#options.path, 0, report);
    return report;
  }

  async #walk(dir: string, depth: number, report: ScanReport): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      this.#log.warn({ err }, 'folder source unreadable');
      return;
    }
    const { settleMs = 10_000, now = Date.now, maxDepth = 4 } = this.#options;
    for (const entry of entries.sort()) {
      const path = join(dir, entry);
      const info = await lstat(path).catch(() => undefined);
      if (info?.isDirectory()) {
        if (depth < maxDepth) await this.#walk(path, depth + 1, report);
        continue;
      }
      const stamp = `${info?.size}:${info?.mtimeMs}`;
      if (!info?.isFile() || now() - info.mtimeMs < settleMs) {
        report.skipped++;
        continue;
      }
      if (this.#known.get(path) === stamp) continue;
      const name = relative(this.#options.path, path);
      const outcome = await this.#take(path, name);
      report[outcome]++;
      if (outcome !== 'refused') this.#known.set(path, stamp);
    }
  }

  async #take(path: string, name: string): Promise<'captured' | 'duplicates' | 'refused'> {
    const { store, deviceId } = this.#options;
    try {
      const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      // The stream owns the handle: it closes it at its end or when destroyed.
      const stream = handle.createReadStream();
      try {
        const result = await store.capture(stream, { source: 'folder', deviceId, name });
        return result.stored ? 'captured' : 'duplicates';
      } finally {
        stream.destroy();
      }
    } catch (err) {
      const errorCode = isGatewayError(err) ? err.code : (err as NodeJS.ErrnoException).code;
      this.#log.warn({ errorCode }, 'a file of the folder source was not taken');
      return 'refused';
    }
  }
}

/** Options of {@link UsbSource}. */
export interface UsbSourceOptions {
  /** The stick's FAT block device (e.g. `/dev/disk/by-id/usb-…-part1`) or an image of it. */
  device: string;
  deviceId: string;
  store: UpStore;
  /** Most files read from one stick (default 1000): a stick of junk cannot keep the box busy. */
  maxFiles?: number;
  logger?: Logger;
}

/**
 * A USB stick the technician plugs in, read in user space with mtools (`mdir`, `mcopy`) straight
 * from its FAT block device: the stick is never mounted, so nothing on it can be executed, no setuid
 * bit or device node on it means anything, and the kernel's filesystem code never parses it.
 * Every regular file is captured (taken once by content hash).
 */
export class UsbSource {
  readonly #options: UsbSourceOptions;
  readonly #log: Logger;

  constructor(options: UsbSourceOptions) {
    if (typeof options?.device !== 'string' || options.device === '') {
      throw new TypeError('"device" must be a non-empty string');
    }
    this.#options = options;
    this.#log = (options.logger ?? nullLogger).child({ module: 'files-up', source: 'usb' });
  }

  /** Reads the stick once. Rejects ATTACHE_MALFORMED when it is not a readable FAT filesystem. */
  async scan(): Promise<ScanReport> {
    const { device, deviceId, store, maxFiles = 1000 } = this.#options;
    const files = await stickFiles(device);
    const report = emptyReport();
    report.skipped = Math.max(0, files.length - maxFiles);
    for (const file of files.slice(0, maxFiles)) {
      const child = mtoolsStream(['mcopy', '-i', device, '-n', file, '-']);
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      // Piped at once: Node discards the output of a child that exits while nobody reads its stdout.
      const output = child.stdout.pipe(new PassThrough({ highWaterMark: 1024 * 1024 }));
      // The exit status is checked before the capture completes: a read error is never stored as a short file.
      async function* checked(): AsyncIterable<Uint8Array> {
        yield* output as AsyncIterable<Buffer>;
        if ((await exited) !== 0) throw new GatewayError('ATTACHE_MALFORMED', 'mcopy failed');
      }
      try {
        const result = await store.capture(checked(), { source: 'usb', deviceId, name: file.slice(3) });
        report[result.stored ? 'captured' : 'duplicates']++;
      } catch (err) {
        child.kill();
        report.refused++;
        this.#log.warn(
          { errorCode: isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL' },
          'a file of the stick was not taken',
        );
      }
    }
    this.#log.info(report, 'USB stick read');
    return report;
  }
}
