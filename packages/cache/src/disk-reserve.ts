import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@attache/core';
import { isDiskFull } from './bounds.js';

/** The reserve file's name in the cache directory (LevelDB ignores files it did not name). */
export const reserveFileName = 'attache-reserve';
const chunkBytes = 1024 * 1024;

/** Options of {@link DiskReserve}. */
export interface DiskReserveOptions {
  /** The cache directory: the reserve lives in it, so on the same filesystem. */
  dir: string;
  /** Size of the reserve; 0 = none (the cache then never refuses for want of it). */
  bytes: number;
  log: Logger;
}

/**
 * A file of `bytes` bytes kept on the cache's filesystem so that a full disk still leaves room to
 * open, read and drain the cache: released (deleted) when a write finds the disk full, which gives
 * LevelDB room to reopen and write deletions, and made again once that much is free twice over. While
 * it is released the cache refuses appends (see the README, "Disk full: the reserve").
 */
export class DiskReserve {
  readonly #path: string;
  readonly #options: DiskReserveOptions;
  #held = false;

  /** Assigns the options; no I/O. */
  constructor(options: DiskReserveOptions) {
    this.#options = options;
    this.#path = join(options.dir, reserveFileName);
  }

  /** True while there should be a reserve and it is not there: appends must wait. */
  get released(): boolean {
    return this.#options.bytes > 0 && !this.#held;
  }

  /** The reserve's size (0: none). */
  get bytes(): number {
    return this.#options.bytes;
  }

  /**
   * Makes sure the reserve is there. An existing full-size file is kept. Otherwise the file is
   * written (incompressible bytes, fsynced) only when the filesystem has room for it and as much
   * again, so the readings accepted next do not at once fill the disk again. Resolves whether the
   * reserve is held; never rejects (a failure is logged and leaves it released).
   */
  async acquire(): Promise<boolean> {
    const { bytes, log } = this.#options;
    if (bytes === 0 || this.#held) return true;
    try {
      const existing = await stat(this.#path).then(
        (s) => s.size,
        () => -1,
      );
      if (existing === bytes) {
        this.#held = true;
        return true;
      }
      if (existing >= 0) await rm(this.#path, { force: true });
      if ((await this.freeBytes()) < 2 * bytes) return false;
      await this.#write();
      this.#held = true;
      log.info({ bytes }, 'disk reserve in place');
      return true;
    } catch (err) {
      await rm(this.#path, { force: true }).catch(() => undefined);
      if (!isDiskFull(err)) log.error({ err }, 'making the disk reserve failed');
      return false;
    }
  }

  /** Deletes the reserve (its space goes to the cache); resolves whether one was deleted. */
  async release(): Promise<boolean> {
    if (this.#options.bytes === 0) return false;
    this.#held = false;
    try {
      await rm(this.#path);
      this.#options.log.warn(
        { bytes: this.#options.bytes },
        'disk full: reserve released to drain the cache',
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Bytes an unprivileged process may still write on the reserve's filesystem. */
  async freeBytes(): Promise<number> {
    const fs = await statfs(this.#options.dir);
    return fs.bavail * fs.bsize;
  }

  /**
   * util-linux's fallocate(1) allocates the blocks without writing them (milliseconds for 64 MiB;
   * Node has no fallocate); where it is missing or the filesystem cannot (EOPNOTSUPP), the bytes are
   * written instead.
   */
  async #write(): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true, mode: 0o700 });
    await rm(this.#path, { force: true });
    try {
      await promisify(execFile)('fallocate', ['-l', String(this.#options.bytes), this.#path]);
      await chmod(this.#path, 0o600);
      return;
    } catch (err) {
      if (isDiskFull(err) || /No space left/.test(String((err as { stderr?: unknown }).stderr))) {
        throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
      }
      await rm(this.#path, { force: true });
    }
    // Random rather than zeros: a compressing filesystem (btrfs, f2fs) would store zeros in no space.
    const chunk = randomBytes(chunkBytes);
    const handle = await open(this.#path, 'w', 0o600);
    try {
      for (let left = this.#options.bytes; left > 0; left -= chunkBytes) {
        await handle.write(chunk, 0, Math.min(left, chunkBytes));
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
