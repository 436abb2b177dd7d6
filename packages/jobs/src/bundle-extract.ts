import {
  closeSync,
  constants,
  createReadStream,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { GatewayError } from '@attache/core';

/** What {@link extractBundle} wrote. */
export interface ExtractReport {
  files: number;
  directories: number;
  bytes: number;
}

const block = 512;

const malformed = (what: string) =>
  new GatewayError('ATTACHE_MALFORMED', `the release bundle is not a valid tar.gz: ${what}`);
const unsafe = (what: string) =>
  new GatewayError(
    'ATTACHE_UNSAFE_FILE',
    `the release bundle holds ${what}: only files and directories inside the release are installed`,
  );

/** Reads exact byte counts from a stream of chunks. */
class ByteReader {
  readonly #chunks: AsyncIterator<Buffer>;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;

  constructor(chunks: AsyncIterable<Buffer>) {
    this.#chunks = chunks[Symbol.asyncIterator]();
  }

  /** Fills the buffer with at least one more chunk; false at the end of the stream. */
  async #more(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#chunks.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    this.#buffer = this.#buffer.length === 0 ? next.value : Buffer.concat([this.#buffer, next.value]);
    return true;
  }

  /** Exactly `n` bytes; undefined at the end of the stream with nothing left; throws when cut short. */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.#buffer.length < n) {
      if (!(await this.#more())) {
        if (this.#buffer.length === 0) return undefined;
        throw malformed('it ends in the middle of an entry');
      }
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** `n` bytes, in pieces as they come (a large file is never held whole). */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buffer.length === 0 && !(await this.#more()))
        throw malformed('it ends in the middle of a file');
      const piece = this.#buffer.subarray(0, Math.min(left, this.#buffer.length));
      this.#buffer = this.#buffer.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
  }

  /** Passes over `n` bytes. */
  async skip(n: number): Promise<void> {
    for await (const piece of this.pieces(n)) void piece;
  }
}

function text(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end === -1 ? field.length : end);
}

function octal(field: Buffer, what: string): number {
  const digits = text(field).trim();
  if (!/^[0-7]{1,12}$/.test(digits)) throw malformed(`the ${what} field of a header is not a number`);
  return Number.parseInt(digits, 8);
}

/** The pax extended header's records (`<length> <key>=<value>\n`). */
function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.toString('latin1', at, space));
    if (space === -1 || !Number.isSafeInteger(length) || length <= space - at || at + length > data.length) {
      throw malformed('a pax header record is malformed');
    }
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw malformed('a pax header record is malformed');
    records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

/**
 * The entry's path inside the release: relative, without `..`; `.` components and a leading `./`
 * dropped. Undefined for the release's top directory itself.
 */
function relativePath(name: string): string | undefined {
  if (name.startsWith('/')) throw unsafe(`an absolute path (${JSON.stringify(name)})`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`a path leading out of the release (${JSON.stringify(name)})`);
  return parts.length === 0 ? undefined : parts.join('/');
}

const typeNames: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symlink',
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
  K: 'a symlink',
};

/**
 * Unpacks a release bundle (tar.gz) into the empty directory `into`, trusting nothing in it: only
 * regular files and directories, at relative paths that stay inside `into`. A symlink, a hard link,
 * a device or FIFO, an absolute path or one with `..` fails the whole bundle (ATTACHE_UNSAFE_FILE),
 * as does a path given twice; a damaged archive fails with ATTACHE_MALFORMED. Files are created
 * new (never through an existing path: O_EXCL, O_NOFOLLOW) with mode 0755 when the bundle marks
 * them executable and 0644 otherwise, directories 0755; owners, times and any other bits in the
 * bundle are ignored. Each file is flushed to disk. The caller removes `into` when this rejects.
 */
export async function extractBundle(archive: string, into: string): Promise<ExtractReport> {
  const gunzip = createGunzip();
  const source = createReadStream(archive);
  source.on('error', (err) => gunzip.destroy(err));
  const reader = new ByteReader(source.pipe(gunzip));
  const report: ExtractReport = { files: 0, directories: 0, bytes: 0 };
  const dirs = new Set<string>();
  const files = new Set<string>();
  let longName: string | undefined;
  let pax = new Map<string, string>();
  const directory = (path: string) => {
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (dirs.has(sub)) continue;
      if (files.has(sub)) throw unsafe(`${JSON.stringify(sub)} as both a file and a directory`);
      mkdirSync(join(into, sub), { mode: 0o755 });
      dirs.add(sub);
      report.directories++;
    }
  };
  try {
    for (;;) {
      const header = await reader.take(block);
      if (header === undefined) throw malformed('it has no end-of-archive blocks');
      if (header.every((b) => b === 0)) return report;
      let sum = 0;
      for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
      if (sum !== octal(header.subarray(148, 156), 'checksum')) throw malformed('a header checksum is wrong');
      const type = String.fromCharCode(header[156] as number);
      const size = Number(pax.get('size') ?? octal(header.subarray(124, 136), 'size'));
      if (!Number.isSafeInteger(size) || size < 0) throw malformed('an entry has an invalid size');
      const padding = (block - (size % block)) % block;
      if (type === 'L' || type === 'x' || type === 'g') {
        const data = await reader.take(size + padding);
        if (data === undefined) throw malformed('it ends in a header');
        if (type === 'L') longName = text(data.subarray(0, size));
        else if (type === 'x') pax = paxRecords(data.subarray(0, size));
        continue;
      }
      const ustar = header.toString('latin1', 257, 263) === 'ustar\0';
      const prefix = ustar ? text(header.subarray(345, 500)) : '';
      const name =
        pax.get('path') ?? longName ?? (prefix ? `${prefix}/` : '') + text(header.subarray(0, 100));
      longName = undefined;
      pax = new Map();
      if (type !== '0' && type !== '\0' && type !== '5') {
        throw unsafe(
          `${typeNames[type] ?? `an entry of type ${JSON.stringify(type)}`} (${JSON.stringify(name)})`,
        );
      }
      const path = relativePath(name);
      if (type === '5') {
        if (path !== undefined) directory(path);
        await reader.skip(size + padding);
        continue;
      }
      if (path === undefined) throw unsafe(`a file named ${JSON.stringify(name)}`);
      const slash = path.lastIndexOf('/');
      if (slash > 0) directory(path.slice(0, slash));
      if (dirs.has(path) || files.has(path)) throw unsafe(`${JSON.stringify(name)} twice`);
      // New, and never through a link: nothing in `into` was made but by this loop.
      const fd = openSync(
        join(into, path),
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      files.add(path);
      try {
        for await (const piece of reader.pieces(size)) writeSync(fd, piece);
        const mode = octal(header.subarray(100, 108), 'mode');
        fchmodSync(fd, mode & 0o111 ? 0o755 : 0o644);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      await reader.skip(padding);
      report.files++;
      report.bytes += size;
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw malformed('it is not gzip-compressed data');
    throw err;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
}
