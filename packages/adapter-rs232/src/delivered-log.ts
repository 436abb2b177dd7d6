import { type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '@attache/core';

/** Options of {@link DeliveredLog}. */
export interface DeliveredLogOptions {
  /** The file that keeps the keys across restarts; omit to keep them in memory only. */
  path?: string;
  /** Keys remembered (the newest win). Default 1024. */
  capacity?: number;
  logger: Logger;
}

/**
 * The keys of the ASTM messages (per reading group) already handed to the sink and stored: a
 * bounded window, persisted as an append-only file of hex keys (one per line, fdatasync'ed),
 * rewritten when it holds twice `capacity` lines. A key is written after the sink resolved, so a
 * crash between the cache write and this write can still double a message (at-least-once); a crash
 * after it cannot.
 */
export class DeliveredLog {
  readonly #path: string | undefined;
  readonly #capacity: number;
  readonly #log: Logger;
  /** Insertion-ordered: the oldest first. */
  #keys = new Set<string>();
  #file: FileHandle | undefined;
  #lines = 0;
  #loaded: Promise<void> | undefined;

  constructor(options: DeliveredLogOptions) {
    this.#path = options.path;
    this.#capacity = options.capacity ?? 1024;
    this.#log = options.logger;
  }

  /** True when `key` was stored (loads the file on first use). */
  async has(key: string): Promise<boolean> {
    await this.#load();
    return this.#keys.has(key);
  }

  /** Remembers `keys` durably. A write failure is logged, not thrown: the readings are stored. */
  async add(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#load();
    for (const key of keys) this.#remember(key);
    if (this.#path === undefined) return;
    try {
      if (this.#lines + keys.length > 2 * this.#capacity) await this.#rewrite(this.#path);
      else {
        if (this.#file === undefined) {
          await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
          this.#file = await open(this.#path, 'a', 0o600);
        }
        await this.#file.write(`${keys.join('\n')}\n`);
        await this.#file.datasync();
        this.#lines += keys.length;
      }
    } catch (err) {
      this.#log.warn({ err }, 'cannot record stored ASTM messages; a re-sent message may be stored twice');
    }
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
  }

  #remember(key: string): void {
    this.#keys.delete(key);
    this.#keys.add(key);
    if (this.#keys.size > this.#capacity) this.#keys.delete(this.#keys.values().next().value as string);
  }

  #load(): Promise<void> {
    this.#loaded ??= this.#read();
    return this.#loaded;
  }

  async #read(): Promise<void> {
    if (this.#path === undefined) return;
    let text = '';
    try {
      text = await readFile(this.#path, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#log.warn({ err }, 'cannot read the stored-message log; starting empty');
      }
    }
    const lines = text.split('\n').filter((line) => /^[0-9a-f]+:\d+$/.test(line));
    for (const line of lines) this.#remember(line);
    this.#lines = lines.length;
  }

  async #rewrite(path: string): Promise<void> {
    await this.close();
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temp = `${path}.tmp`;
    const file = await open(temp, 'w', 0o600);
    try {
      await file.write(`${[...this.#keys].join('\n')}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
    this.#lines = this.#keys.size;
  }
}
