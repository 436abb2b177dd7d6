import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CacheKeyring } from '@attache/cache';
import {
  exists,
  GatewayError,
  isGatewayError,
  type Logger,
  mkdirDurably,
  nullLogger,
  readJson,
  syncDir,
  writeDurably,
} from '@attache/core';
import { deidentifyTextLog } from './deidentify.js';
import { openBlob, readSealed, SealedWriter, sealBlob } from './sealed-file.js';

/** Bounds of the up store, like the cache's (`whenFull` has the same two policies). */
export interface UpStoreLimits {
  /** Most files waiting for upload (>= 1). */
  maxFiles: number;
  /** Most bytes of file content waiting (plaintext, >= 1). */
  maxBytes: number;
  /** Largest single file; a larger capture is refused (default: `maxBytes`). */
  maxFileBytes?: number;
  /** `refuse`: a file that does not fit is not taken. `drop-oldest`: the oldest files are deleted until it fits. */
  whenFull: 'refuse' | 'drop-oldest';
}

/** Options of {@link UpStore}. */
export interface UpStoreOptions {
  /** Directory of the store (e.g. `<dataDir>/files-up`); created, mode 0700, by `open()`. */
  path: string;
  /** The cache's keyring: files and their metadata are sealed with a key derived from its current key. */
  keyring: CacheKeyring;
  /** Bounds (default: none). */
  limits?: UpStoreLimits;
  /** Where the store logs (default nullLogger). */
  logger?: Logger;
  /** Wall-clock time in ms (default Date.now): the capture time of files that do not give one. */
  now?: () => number;
  /**
   * The devices whose files are text logs to de-identify before they are stored (see
   * deidentify.ts), and the free-text rule applied to each line. Their files are never kept as they came.
   */
  deidentify?: { deviceIds: string[]; clean: (line: string) => string };
}

/** Where a capture came from. */
export interface CaptureSource {
  /** The source kind and name, e.g. `folder:export`, `usb`, `serial:ventilator-1`. */
  source: string;
  /** The device the file belongs to. */
  deviceId: string;
  /** A name for people (the file's name at its source); sealed, never a path in the store or a key in S3. */
  name: string;
  /** RFC 3339; default: now. */
  capturedAt?: string;
}

/** A file waiting in the up store. */
export interface CapturedFile extends Required<CaptureSource> {
  sha256: string;
  size: number;
}

/** Why a file was not taken: the store is full, the file is too large, or it had to be de-identified and is not text. */
export type RefusedReason = 'full' | 'too-large' | 'not-text';

/** What the store did, one event per file (the gateway journals them and `attache status` counts them). */
export type UpStoreEvent =
  | { type: 'file.captured'; file: CapturedFile }
  | { type: 'file.duplicate'; sha256: string; source: string }
  | { type: 'file.refused'; source: string; deviceId: string; size: number; reason: RefusedReason }
  | { type: 'file.dropped'; file: CapturedFile }
  | { type: 'file.uploaded'; file: CapturedFile; key: string };

/** Durable counters of the store, since it was created. */
export interface UpStoreCounts {
  captured: number;
  duplicates: number;
  uploaded: number;
  refused: number;
  dropped: number;
}

/** What `capture()` resolved. */
export type CaptureResult = { stored: true; file: CapturedFile } | { stored: false; sha256: string };

const hexSha256 = /^[0-9a-f]{64}$/;
const zeroCounts: UpStoreCounts = { captured: 0, duplicates: 0, uploaded: 0, refused: 0, dropped: 0 };

/**
 * The files captured on the box (device logs, service reports), waiting for upload. Content-addressed:
 * each file is stored once under its SHA-256 and taken once (a hash already stored or uploaded is
 * a duplicate). Content and metadata are sealed (AES-256-GCM, see sealed-file.ts). Bounded like the
 * cache. See the README, "Up store".
 */
export class UpStore extends EventEmitter<{ event: [UpStoreEvent] }> {
  readonly #path: string;
  readonly #keyring: CacheKeyring;
  readonly #limits: UpStoreLimits | undefined;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #deidentify: UpStoreOptions['deidentify'];
  #counts: UpStoreCounts = { ...zeroCounts };
  #queue: Promise<unknown> = Promise.resolve();

  /** Keeps the options; no I/O. Throws a TypeError naming a bad option. */
  constructor(options: UpStoreOptions) {
    super();
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError('"path" must be a non-empty string');
    }
    const limits = options.limits;
    if (limits) {
      for (const name of ['maxFiles', 'maxBytes'] as const) {
        if (!Number.isSafeInteger(limits[name]) || limits[name] < 1) {
          throw new TypeError(`"limits.${name}" must be an integer >= 1`);
        }
      }
      if (limits.whenFull !== 'refuse' && limits.whenFull !== 'drop-oldest') {
        throw new TypeError('"limits.whenFull" must be "refuse" or "drop-oldest"');
      }
    }
    this.#path = options.path;
    this.#keyring = options.keyring;
    this.#limits = limits;
    this.#log = (options.logger ?? nullLogger).child({ module: 'files-up' });
    this.#now = options.now ?? Date.now;
    this.#deidentify = options.deidentify;
  }

  /** Creates the directories (0700), removes unfinished captures, reads the counters. */
  async open(): Promise<void> {
    for (const dir of ['objects', 'seen', 'uploads', 'tmp']) await mkdirDurably(this.#dir(dir));
    await rm(this.#dir('tmp'), { recursive: true, force: true });
    await mkdirDurably(this.#dir('tmp'));
    const counts = await readJson<UpStoreCounts>(this.#dir('counts.json'));
    this.#counts = { ...zeroCounts, ...counts };
  }

  /** The counters (captured, duplicates, uploaded, refused, dropped), durable across restarts. */
  get counts(): UpStoreCounts {
    return { ...this.#counts };
  }

  /**
   * Takes a file: its bytes are hashed and sealed into a temporary file as they arrive, then kept
   * under their SHA-256 unless that hash was taken before (resolves `{ stored: false }`). Rejects
   * ATTACHE_CACHE_FULL (nothing kept) when the file is larger than `maxFileBytes` or does not fit
   * with `whenFull: refuse`; with `drop-oldest` the oldest files are dropped to make room.
   */
  capture(content: Uint8Array | AsyncIterable<Uint8Array>, from: CaptureSource): Promise<CaptureResult> {
    return this.#serial(() => this.#capture(content, from));
  }

  async #capture(
    content: Uint8Array | AsyncIterable<Uint8Array>,
    from: CaptureSource,
  ): Promise<CaptureResult> {
    const tmp = this.#dir('tmp', randomBytes(8).toString('hex'));
    const hash = createHash('sha256');
    let size = 0;
    const maxFileBytes = this.#limits ? (this.#limits.maxFileBytes ?? this.#limits.maxBytes) : Infinity;
    const handle = await open(tmp, 'wx', 0o600);
    try {
      const writer = new SealedWriter(handle, this.#keyring);
      const raw = content instanceof Uint8Array ? [content] : content;
      const rule = this.#deidentify;
      const chunks = rule?.deviceIds.includes(from.deviceId)
        ? deidentifyTextLog(toAsync(raw), rule.clean)
        : raw;
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > maxFileBytes) break;
        hash.update(chunk);
        await writer.write(chunk);
      }
      if (size <= maxFileBytes) await writer.end();
    } catch (err) {
      // The source failed mid-file, or a file to de-identify is not text: nothing of it is kept.
      await rm(tmp, { force: true });
      if (isGatewayError(err) && err.code === 'ATTACHE_MALFORMED') await this.#count(from, size, 'not-text');
      throw err;
    } finally {
      await handle.close();
    }
    if (size > maxFileBytes) {
      await rm(tmp, { force: true });
      return this.#refuse(from, size, 'too-large');
    }
    const sha256 = hash.digest('hex');
    if ((await exists(this.#dir('objects', sha256))) || (await exists(this.#dir('seen', sha256)))) {
      await rm(tmp, { force: true });
      this.#counts.duplicates++;
      await this.#saveCounts();
      this.#emit({ type: 'file.duplicate', sha256, source: from.source });
      return { stored: false, sha256 };
    }
    if (!(await this.#makeRoom(size))) {
      await rm(tmp, { force: true });
      return this.#refuse(from, size, 'full');
    }
    const file: CapturedFile = {
      sha256,
      size,
      source: from.source,
      deviceId: from.deviceId,
      name: from.name.slice(0, 255),
      capturedAt: from.capturedAt ?? new Date(this.#now()).toISOString(),
    };
    await this.#writeMeta(file);
    await rename(tmp, this.#dir('objects', sha256));
    await syncDir(this.#dir('objects'));
    this.#counts.captured++;
    await this.#saveCounts();
    this.#log.info({ sha256, size, source: file.source, deviceId: file.deviceId }, 'file captured');
    this.#emit({ type: 'file.captured', file });
    return { stored: true, file };
  }

  async #refuse(from: CaptureSource, size: number, reason: 'full' | 'too-large'): Promise<never> {
    await this.#count(from, size, reason);
    throw new GatewayError(
      'ATTACHE_CACHE_FULL',
      reason === 'full' ? 'the file store is full' : `a file of ${size} bytes is larger than the store takes`,
    );
  }

  async #count(from: CaptureSource, size: number, reason: RefusedReason): Promise<void> {
    this.#counts.refused++;
    await this.#saveCounts();
    this.#log.warn({ source: from.source, deviceId: from.deviceId, size, reason }, 'file refused');
    this.#emit({ type: 'file.refused', source: from.source, deviceId: from.deviceId, size, reason });
  }

  /** True when a file of `size` bytes fits, after dropping the oldest with `drop-oldest`. */
  async #makeRoom(size: number): Promise<boolean> {
    const limits = this.#limits;
    if (!limits) return true;
    const files = await this.#listed();
    const fits = () =>
      files.length + 1 <= limits.maxFiles && files.reduce((n, f) => n + f.size, size) <= limits.maxBytes;
    while (!fits() && limits.whenFull === 'drop-oldest' && files.length > 0) {
      const oldest = files.shift() as CapturedFile;
      await this.#delete(oldest.sha256, false);
      this.#counts.dropped++;
      await this.#saveCounts();
      this.#log.warn({ sha256: oldest.sha256, size: oldest.size }, 'file dropped: the store is full');
      this.#emit({ type: 'file.dropped', file: oldest });
    }
    return fits();
  }

  /** Every waiting file, oldest capture first (then by sha256). */
  list(): Promise<CapturedFile[]> {
    return this.#serial(() => this.#listed());
  }

  async #listed(): Promise<CapturedFile[]> {
    const files: CapturedFile[] = [];
    for (const entry of await readdir(this.#dir('objects'))) {
      if (!hexSha256.test(entry)) continue;
      const file = await this.#readMeta(entry);
      if (file) files.push(file);
    }
    return files.sort((a, b) => a.capturedAt.localeCompare(b.capturedAt) || a.sha256.localeCompare(b.sha256));
  }

  /** Plaintext bytes [start, end) of a waiting file, authenticated. Rejects ATTACHE_CACHE_TAMPERED. */
  async read(file: CapturedFile, start = 0, end = file.size): Promise<Buffer> {
    const handle = await open(this.#dir('objects', file.sha256), 'r');
    try {
      return await readSealed(handle, this.#keyring, file.size, start, end);
    } finally {
      await handle.close();
    }
  }

  /**
   * S3 confirmed `file` under `key` with its checksum: deletes it from the box, remembers its hash
   * (the same content is not taken again) and counts it.
   */
  uploaded(file: CapturedFile, key: string): Promise<void> {
    return this.#serial(async () => {
      await this.#delete(file.sha256, true);
      this.#counts.uploaded++;
      await this.#saveCounts();
      this.#log.info({ sha256: file.sha256, size: file.size, key }, 'file uploaded and deleted');
      this.#emit({ type: 'file.uploaded', file, key });
    });
  }

  /** The durable state of a multipart upload of `sha256` (see FileUploader); undefined when none. */
  uploadState<T>(sha256: string): Promise<T | undefined> {
    return readJson<T>(this.#dir('uploads', `${sha256}.json`));
  }

  /** Saves (fsynced) or, with undefined, deletes the multipart state of `sha256`. */
  async setUploadState(sha256: string, state: unknown): Promise<void> {
    const path = this.#dir('uploads', `${sha256}.json`);
    if (state === undefined) await rm(path, { force: true });
    else await writeDurably(path, JSON.stringify(state), { tmpDir: this.#dir('tmp') });
  }

  async #delete(sha256: string, remember: boolean): Promise<void> {
    if (remember) await writeDurably(this.#dir('seen', sha256), '', { tmpDir: this.#dir('tmp') });
    await rm(this.#dir('objects', sha256), { force: true });
    await rm(this.#dir('objects', `${sha256}.meta`), { force: true });
    await rm(this.#dir('uploads', `${sha256}.json`), { force: true });
    await syncDir(this.#dir('objects'));
  }

  async #writeMeta(file: CapturedFile): Promise<void> {
    const sealed = sealBlob(Buffer.from(JSON.stringify(file)), this.#keyring);
    await writeDurably(this.#dir('objects', `${file.sha256}.meta`), sealed, { tmpDir: this.#dir('tmp') });
  }

  /** The metadata of a stored file; undefined (logged) when missing or failing authentication. */
  async #readMeta(sha256: string): Promise<CapturedFile | undefined> {
    try {
      const sealed = await readFile(this.#dir('objects', `${sha256}.meta`));
      const file = JSON.parse(openBlob(sealed, this.#keyring).toString('utf8')) as CapturedFile;
      return file.sha256 === sha256 ? file : undefined;
    } catch (err) {
      this.#log.error({ err, sha256 }, 'file metadata unreadable: the file is skipped');
      return undefined;
    }
  }

  async #saveCounts(): Promise<void> {
    await writeDurably(this.#dir('counts.json'), JSON.stringify(this.#counts), { tmpDir: this.#dir('tmp') });
  }

  #emit(event: UpStoreEvent): void {
    this.emit('event', event);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #dir(...parts: string[]): string {
    return join(this.#path, ...parts);
  }
}

async function* toAsync(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield* chunks;
}

/**
 * The detail of a store event as the gateway's event message carries it (event.schema.json): hashes,
 * sizes, sources and device ids, never the file's name or content; undefined for `file.duplicate`.
 */
export function fileEventDetail(event: UpStoreEvent): Record<string, string | number> | undefined {
  switch (event.type) {
    case 'file.captured': {
      const { deviceId, sha256, size, source } = event.file;
      return { deviceId, sha256, size, origin: source };
    }
    case 'file.uploaded': {
      const { deviceId, sha256, size } = event.file;
      return { deviceId, sha256, size, key: event.key };
    }
    case 'file.refused':
      return { deviceId: event.deviceId, size: event.size, origin: event.source, reason: event.reason };
    case 'file.dropped': {
      const { deviceId, sha256, size } = event.file;
      return { deviceId, sha256, size };
    }
    case 'file.duplicate':
      return undefined;
  }
}
