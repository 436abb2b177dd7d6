import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  exists,
  GatewayError,
  type Logger,
  mkdirDurably,
  nullLogger,
  readJson,
  syncDir,
  writeDurably,
} from '@attache/core';
import { fsError, hashFile } from './file-io.js';

/** Options of {@link FileStore}. */
export interface FileStoreOptions {
  /** Directory of the store (e.g. `<dataDir>/files`, beside the cache); created, mode 0700, by `open()`. */
  path: string;
  /** Where the store logs (default nullLogger). */
  logger?: Logger;
}

/** What a caller announces about a file before its bytes arrive (e.g. from an AWS IoT Job document). */
export interface FileExpectation {
  /** SHA-256 of the content, 64 lowercase hex digits: the file's address in the store. */
  sha256: string;
  /** Length of the content in bytes. */
  size: number;
  /** A name for people and logs (default: the sha256); not used as a path. */
  name?: string;
}

/** A complete, verified file of the store. */
export interface StoredFile {
  sha256: string;
  size: number;
  name: string;
  /** When it was stored, RFC 3339. */
  addedAt: string;
}

const hexSha256 = /^[0-9a-f]{64}$/;

function checkExpectation(expected: FileExpectation): Required<FileExpectation> {
  const { sha256, size, name = sha256 } = expected ?? {};
  if (typeof sha256 !== 'string' || !hexSha256.test(sha256)) {
    throw new TypeError('"sha256" must be 64 lowercase hex digits');
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new TypeError('"size" must be an integer >= 0');
  if (typeof name !== 'string' || name === '') throw new TypeError('"name" must be a non-empty string');
  return { sha256, size, name };
}

function mismatch(what: string): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', `file refused: ${what}`);
}

/**
 * Content-addressed files beside the cache, for files pushed from the cloud: each stored under its
 * SHA-256, written through a temporary file, fsync and rename, and verified again on every read.
 * Files are not encrypted (they come from the cloud, not from patients). See the README, "File store".
 */
export class FileStore {
  readonly #path: string;
  readonly #log: Logger;

  /** Keeps the options; no I/O. Throws a TypeError when `path` is not a non-empty string. */
  constructor(options: FileStoreOptions) {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError('"path" must be a non-empty string');
    }
    this.#path = options.path;
    this.#log = (options.logger ?? nullLogger).child({ module: 'file-store' });
  }

  /**
   * Creates the store's directories (mode 0700) and removes what a crash left half done: temporary
   * files and metadata without content. Partial downloads are kept. Rejects ATTACHE_CACHE_WRITE.
   */
  async open(): Promise<void> {
    try {
      for (const dir of ['objects', 'partial', 'tmp', 'quarantine']) {
        await mkdirDurably(join(this.#path, dir));
      }
      await rm(join(this.#path, 'tmp'), { recursive: true, force: true });
      await mkdir(join(this.#path, 'tmp'), { mode: 0o700 });
      for (const entry of await readdir(this.#dir('objects'))) {
        const sha = entry.slice(0, -'.json'.length);
        if (entry.endsWith('.json') && !(await exists(this.#dir('objects', sha)))) {
          await rm(this.#dir('objects', entry), { force: true });
        }
      }
    } catch (err) {
      throw fsError(err, `cannot open the file store at ${this.#path}`);
    }
  }

  /**
   * Stores `content` (bytes, or a stream of chunks) under `expected.sha256`. Resolves once the file
   * and its metadata are durable (fsynced and renamed into place); at once when the file is already
   * stored. Rejects ATTACHE_MALFORMED when the content is shorter or longer than `size` or its hash
   * differs (nothing is kept), ATTACHE_CACHE_FULL on a full disk, ATTACHE_CACHE_WRITE otherwise.
   */
  async put(content: Uint8Array | AsyncIterable<Uint8Array>, expected: FileExpectation): Promise<StoredFile> {
    const file = checkExpectation(expected);
    const known = await this.#metadata(file.sha256);
    if (known) return known;
    const partial = await this.openPartial(file);
    try {
      await partial.discard(); // put() writes the whole content: start from the first byte
      const chunks = content instanceof Uint8Array ? [content] : content;
      for await (const chunk of chunks) await partial.write(chunk);
      return await partial.complete();
    } catch (err) {
      await partial.discard().catch(() => undefined);
      throw err;
    }
  }

  /**
   * The partial download of `expected.sha256`: `received` tells how many bytes are held (0 for a
   * new one), so a download interrupted by the end of a window, a crash or a power cut resumes at
   * that offset. A partial held for the same hash with another size is discarded. Rejects
   * ATTACHE_CACHE_WRITE (ATTACHE_CACHE_FULL on a full disk) when it cannot be created.
   */
  async openPartial(expected: FileExpectation): Promise<PartialFile> {
    const file = checkExpectation(expected);
    const data = this.#dir('partial', file.sha256);
    const meta = `${data}.json`;
    try {
      const held = await readJson<Required<FileExpectation>>(meta);
      if (held?.size !== file.size) {
        await rm(data, { force: true });
        await writeDurably(meta, JSON.stringify(file), { tmpDir: this.#dir('tmp') });
      }
      const handle = await open(data, 'a', 0o600);
      await handle.close();
      return new PartialFile(file, data, (await stat(data)).size, (sha) => this.#complete(sha));
    } catch (err) {
      throw fsError(err, `cannot open the partial file ${file.name}`);
    }
  }

  /**
   * The content of a stored file, verified against its SHA-256 first; undefined when none is
   * stored. A file whose content no longer matches is moved to `quarantine/`, logged at error, and
   * rejected with ATTACHE_CACHE_TAMPERED: it is never returned.
   */
  async read(sha256: string): Promise<Buffer | undefined> {
    const { sha256: sha } = checkExpectation({ sha256, size: 0 });
    let content: Buffer;
    try {
      content = await readFile(this.#dir('objects', sha));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fsError(err, `cannot read the file ${sha}`);
    }
    if (createHash('sha256').update(content).digest('hex') === sha) return content;
    const err = new GatewayError(
      'ATTACHE_CACHE_TAMPERED',
      `the stored file ${sha} no longer matches its hash`,
    );
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await rename(this.#dir('objects', sha), this.#dir('quarantine', `${sha}-${stamp}`)).catch(
      () => undefined,
    );
    await rm(this.#dir('objects', `${sha}.json`), { force: true });
    this.#log.error({ err, sha256: sha }, 'stored file failed verification: quarantined');
    throw err;
  }

  /** Every complete file, sorted by `addedAt` then sha256. Rejects ATTACHE_CACHE_WRITE when unreadable. */
  async list(): Promise<StoredFile[]> {
    let entries: string[];
    try {
      entries = await readdir(this.#dir('objects'));
    } catch (err) {
      throw fsError(err, `cannot list the file store at ${this.#path}`);
    }
    const files: StoredFile[] = [];
    for (const entry of entries) {
      if (!hexSha256.test(entry)) continue;
      const meta = await this.#metadata(entry);
      if (meta) files.push(meta);
    }
    return files.sort((a, b) => a.addedAt.localeCompare(b.addedAt) || a.sha256.localeCompare(b.sha256));
  }

  /** Deletes a stored file (and any partial of it); resolves true when there was one. */
  async remove(sha256: string): Promise<boolean> {
    const { sha256: sha } = checkExpectation({ sha256, size: 0 });
    const had = await exists(this.#dir('objects', sha));
    for (const path of [this.#dir('objects', sha), this.#dir('partial', sha)]) {
      await rm(path, { force: true });
      await rm(`${path}.json`, { force: true });
    }
    await syncDir(this.#dir('objects'));
    return had;
  }

  /** Metadata of a complete file; undefined when it is not (fully) stored. */
  async #metadata(sha256: string): Promise<StoredFile | undefined> {
    if (!(await exists(this.#dir('objects', sha256)))) return undefined;
    return readJson<StoredFile>(this.#dir('objects', `${sha256}.json`));
  }

  /** Verifies a complete partial and moves it into place: metadata first, then the content. */
  async #complete(file: Required<FileExpectation>): Promise<StoredFile> {
    const data = this.#dir('partial', file.sha256);
    const { size, sha256 } = await hashFile(data);
    if (size !== file.size || sha256 !== file.sha256) {
      await rm(data, { force: true });
      await rm(`${data}.json`, { force: true });
      throw mismatch(
        `${file.name}: ${size} bytes with SHA-256 ${sha256}, expected ${file.size} bytes, ${file.sha256}`,
      );
    }
    const stored: StoredFile = { ...file, addedAt: new Date().toISOString() };
    try {
      await writeDurably(this.#dir('objects', `${sha256}.json`), JSON.stringify(stored), {
        tmpDir: this.#dir('tmp'),
      });
      await rename(data, this.#dir('objects', sha256));
      await syncDir(this.#dir('objects'));
      await rm(`${data}.json`, { force: true });
    } catch (err) {
      throw fsError(err, `cannot store the file ${file.name}`);
    }
    this.#log.info({ sha256, size, name: file.name }, 'file stored');
    return stored;
  }

  #dir(...parts: string[]): string {
    return join(this.#path, ...parts);
  }
}

/**
 * A download in progress (see {@link FileStore.openPartial}): append chunks with `write()`, each
 * durable (fsynced) when it resolves, then `complete()`.
 */
export class PartialFile {
  readonly sha256: string;
  /** The announced length in bytes. */
  readonly size: number;
  readonly #file: Required<FileExpectation>;
  readonly #path: string;
  readonly #complete: (file: Required<FileExpectation>) => Promise<StoredFile>;
  #received: number;

  /** Created by FileStore.openPartial. */
  constructor(
    file: Required<FileExpectation>,
    path: string,
    received: number,
    complete: (file: Required<FileExpectation>) => Promise<StoredFile>,
  ) {
    this.#file = file;
    this.#path = path;
    this.sha256 = file.sha256;
    this.size = file.size;
    this.#received = received;
    this.#complete = complete;
  }

  /** Bytes held so far (durable): where the download resumes. */
  get received(): number {
    return this.#received;
  }

  /**
   * Appends `chunk` and fsyncs. Rejects ATTACHE_MALFORMED (nothing written) when it would go past
   * `size`, ATTACHE_CACHE_FULL on a full disk, ATTACHE_CACHE_WRITE otherwise.
   */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.#received + chunk.length > this.size) {
      throw mismatch(`${this.#file.name}: more than the announced ${this.size} bytes`);
    }
    const handle = await open(this.#path, 'a', 0o600);
    try {
      await handle.write(chunk);
      await handle.sync();
      this.#received += chunk.length;
    } catch (err) {
      throw fsError(err, `cannot write the file ${this.#file.name}`);
    } finally {
      await handle.close();
    }
  }

  /**
   * Verifies size and SHA-256 and moves the file into the store. Rejects ATTACHE_MALFORMED when
   * bytes are missing (the partial is kept: resume it) or the hash differs (the partial is deleted).
   */
  async complete(): Promise<StoredFile> {
    if (this.#received < this.size) {
      throw mismatch(`${this.#file.name}: ${this.#received} of ${this.size} bytes received`);
    }
    return this.#complete(this.#file);
  }

  /** Deletes what was received; a later write starts the file again from its first byte. */
  async discard(): Promise<void> {
    await rm(this.#path, { force: true });
    this.#received = 0;
  }
}
