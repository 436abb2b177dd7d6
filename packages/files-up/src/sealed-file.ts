import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { CacheKeyring } from '@attache/cache';
import { GatewayError } from '@attache/core';

/** Plaintext bytes per sealed chunk: 64 KiB. S3 parts are multiples of it, so a part is whole chunks. */
export const chunkBytes = 64 * 1024;
const magic = Buffer.from('ATUP1');
const fileIdBytes = 16;
const ivBytes = 12;
const tagBytes = 16;
const overhead = ivBytes + tagBytes;

/** The file key of a keyring key: HKDF-SHA256, so the cache's values and files never share a key. */
function fileKey(keyring: CacheKeyring, id: string): Buffer {
  const key = keyring.key(id);
  if (key?.length !== 32) {
    throw new GatewayError('ATTACHE_CACHE_KEY', `no 32-byte key "${id}" for a sealed file`);
  }
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'attache-files-up', 32));
}

/** AAD of chunk `index`: the file's header (its random id included), the index, and whether it is the last. */
function chunkAad(header: Buffer, index: number, last: boolean): Buffer {
  const tail = Buffer.alloc(5);
  tail.writeUInt32BE(index, 0);
  tail[4] = last ? 1 : 0;
  return Buffer.concat([header, tail]);
}

/**
 * Writes a sealed file: AES-256-GCM per 64 KiB chunk. Layout: `ATUP1` ‖ key id length (1 byte) ‖
 * key id ‖ random file id (16) ‖ chunks of IV (12) ‖ tag (16) ‖ ciphertext. Each chunk's AAD binds
 * the header, its index and a last-chunk flag, so chunks cannot be reordered, swapped between files
 * or cut off unnoticed.
 */
export class SealedWriter {
  readonly #handle: FileHandle;
  readonly #key: Buffer;
  readonly #header: Buffer;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #index = 0;
  #written = 0;

  constructor(handle: FileHandle, keyring: CacheKeyring) {
    this.#handle = handle;
    this.#key = fileKey(keyring, keyring.currentId);
    const id = Buffer.from(keyring.currentId, 'ascii');
    this.#header = Buffer.concat([magic, Buffer.from([id.length]), id, randomBytes(fileIdBytes)]);
  }

  /** Appends plaintext; whole chunks are sealed and written as they fill. */
  async write(plain: Uint8Array): Promise<void> {
    if (this.#written === 0) await this.#out(this.#header);
    this.#pending.push(Buffer.from(plain));
    this.#pendingBytes += plain.length;
    // The last chunk is sealed by end(): keep at least one byte back until then. One copy per write,
    // then whole chunks are sealed from it (linear in the input, however large one write is).
    if (this.#pendingBytes <= chunkBytes) return;
    const all = Buffer.concat(this.#pending);
    let at = 0;
    while (all.length - at > chunkBytes) {
      await this.#seal(all.subarray(at, at + chunkBytes), false);
      at += chunkBytes;
    }
    this.#pending = [all.subarray(at)];
    this.#pendingBytes = all.length - at;
  }

  /** Seals the last chunk (possibly empty) and fsyncs. */
  async end(): Promise<void> {
    if (this.#written === 0) await this.#out(this.#header);
    await this.#seal(Buffer.concat(this.#pending), true);
    this.#pending = [];
    await this.#handle.sync();
  }

  async #seal(plain: Buffer, last: boolean): Promise<void> {
    const iv = randomBytes(ivBytes);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(chunkAad(this.#header, this.#index++, last));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    await this.#out(Buffer.concat([iv, cipher.getAuthTag(), body]));
  }

  async #out(bytes: Buffer): Promise<void> {
    await this.#handle.write(bytes, 0, bytes.length, this.#written);
    this.#written += bytes.length;
  }
}

function tampered(what: string): GatewayError {
  return new GatewayError('ATTACHE_CACHE_TAMPERED', `sealed file: ${what}`);
}

/**
 * Reads plaintext ranges of a sealed file of `size` plaintext bytes. Rejects ATTACHE_CACHE_TAMPERED
 * when a chunk fails authentication (changed, moved, cut off) and ATTACHE_CACHE_KEY when its key is
 * not in the keyring.
 */
export async function readSealed(
  handle: FileHandle,
  keyring: CacheKeyring,
  size: number,
  start = 0,
  end = size,
): Promise<Buffer> {
  const head = Buffer.alloc(magic.length + 1 + 255 + fileIdBytes);
  const { bytesRead } = await handle.read(head, 0, head.length, 0);
  if (bytesRead < magic.length + 1 || !head.subarray(0, magic.length).equals(magic)) {
    throw tampered('not a sealed file');
  }
  const idLength = head[magic.length] ?? 0;
  const headerLength = magic.length + 1 + idLength + fileIdBytes;
  if (bytesRead < headerLength) throw tampered('header cut off');
  const header = Buffer.from(head.subarray(0, headerLength));
  const key = fileKey(
    keyring,
    header.subarray(magic.length + 1, magic.length + 1 + idLength).toString('ascii'),
  );
  const lastIndex = Math.max(0, Math.ceil(size / chunkBytes) - 1);
  const parts: Buffer[] = [];
  const first = Math.floor(start / chunkBytes);
  const final = end > start ? Math.floor((end - 1) / chunkBytes) : first - 1;
  for (let index = first; index <= final; index++) {
    const plainLength = index === lastIndex ? size - index * chunkBytes : chunkBytes;
    const sealed = Buffer.alloc(overhead + plainLength);
    const at = headerLength + index * (overhead + chunkBytes);
    const read = await handle.read(sealed, 0, sealed.length, at);
    if (read.bytesRead !== sealed.length) throw tampered(`chunk ${index} cut off`);
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, ivBytes));
    decipher.setAAD(chunkAad(header, index, index === lastIndex));
    decipher.setAuthTag(sealed.subarray(ivBytes, overhead));
    try {
      parts.push(Buffer.concat([decipher.update(sealed.subarray(overhead)), decipher.final()]));
    } catch (err) {
      throw new GatewayError('ATTACHE_CACHE_TAMPERED', `sealed file: chunk ${index} failed authentication`, {
        cause: err,
      });
    }
  }
  const all = Buffer.concat(parts);
  const offset = start - first * chunkBytes;
  return all.subarray(offset, offset + (end - start));
}

/** Seals a small value (< 64 KiB, e.g. a file's metadata) in the same format as a one-chunk file. */
export function sealBlob(plain: Buffer, keyring: CacheKeyring): Buffer {
  if (plain.length > chunkBytes) throw new TypeError('"plain" must be at most 64 KiB');
  const id = Buffer.from(keyring.currentId, 'ascii');
  const header = Buffer.concat([magic, Buffer.from([id.length]), id, randomBytes(fileIdBytes)]);
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', fileKey(keyring, keyring.currentId), iv);
  cipher.setAAD(chunkAad(header, 0, true));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
}

/** Opens what {@link sealBlob} sealed. Rejects ATTACHE_CACHE_TAMPERED when it fails authentication. */
export function openBlob(sealed: Buffer, keyring: CacheKeyring): Buffer {
  if (sealed.length < magic.length + 1 || !sealed.subarray(0, magic.length).equals(magic)) {
    throw tampered('not a sealed file');
  }
  const idLength = sealed[magic.length] ?? 0;
  const headerLength = magic.length + 1 + idLength + fileIdBytes;
  if (sealed.length < headerLength + overhead) throw tampered('cut off');
  const header = sealed.subarray(0, headerLength);
  const id = header.subarray(magic.length + 1, magic.length + 1 + idLength).toString('ascii');
  const decipher = createDecipheriv(
    'aes-256-gcm',
    fileKey(keyring, id),
    sealed.subarray(headerLength, headerLength + ivBytes),
  );
  decipher.setAAD(chunkAad(header, 0, true));
  decipher.setAuthTag(sealed.subarray(headerLength + ivBytes, headerLength + overhead));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(headerLength + overhead)), decipher.final()]);
  } catch (err) {
    throw new GatewayError('ATTACHE_CACHE_TAMPERED', 'sealed value failed authentication', { cause: err });
  }
}
