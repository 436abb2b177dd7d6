import { createCipheriv, createDecipheriv, createHash, type KeyObject, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, link, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';
import { type AttacheRecord, GatewayError, type StoredRecord } from '@attache/core';
import {
  type ExportEncryption,
  keyFingerprint,
  recipientKey,
  unwrapDataKey,
  wrapDataKey,
} from './export-crypto.js';
import {
  type ExportSigner,
  type ExportSigningKey,
  signBytes,
  signerKey,
  signerOf,
  verifySigned,
} from './export-signing.js';
import { fsError } from './file-io.js';

/**
 * The first line of an export file, readable without the key. The second line is the gateway's
 * ECDSA P-256 / SHA-256 signature (DER, base64) of the first line's bytes (without its `\n`).
 */
export interface ExportManifest {
  format: 'attache-cache-export';
  version: 2;
  /** When the export was written, RFC 3339. */
  createdAt: string;
  /** The records' gatewayId (of the first record), null when there are none. */
  gatewayId: string | null;
  /** The time filter on `capturedAt` (RFC 3339; since inclusive, until exclusive), null when open. */
  since: string | null;
  until: string | null;
  records: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** SHA-256 (hex) and length of the plaintext: the records' JSON, one per line, each line ending in `\n`. */
  plaintextSha256: string;
  plaintextBytes: number;
  /** SHA-256 (hex) and length of the ciphertext that follows the manifest line (checkable without the key). */
  ciphertextSha256: string;
  ciphertextBytes: number;
  encryption: ExportEncryption;
  /** The gateway key that signed this manifest. */
  signer: ExportSigner;
}

/** What {@link exportRecords} reads: the cache (only `read`, it deletes nothing). */
export interface ExportSource {
  read(options: { afterSeq: number; limit: number; maxBytes: number }): Promise<StoredRecord[]>;
}

/** Options of {@link exportRecords}. */
export interface ExportOptions {
  /** The file to write (put in place atomically when complete). */
  out: string;
  /** Replace `out` when it exists (default false: ATTACHE_FILE_EXISTS). */
  overwrite?: boolean;
  /** The recipient's public key, PEM (EC P-256 or RSA >= 2048 bits). */
  recipient: string | KeyObject;
  /** The gateway's export-signing key ({@link loadOrCreateSigningKey}). */
  signingKey: ExportSigningKey;
  /** Called after each record written with how many so far (for a progress bar). */
  onProgress?: (records: number) => void;
  /** Only records captured at or after this time. */
  since?: Date;
  /** Only records captured before this time. */
  until?: Date;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const pageRecords = 1000;

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

function fileExists(out: string): GatewayError {
  return new GatewayError(
    'ATTACHE_FILE_EXISTS',
    `${out} exists: choose another name, or replace it with --force`,
  );
}

function malformed(what: string): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', `export file refused: ${what}`);
}

/**
 * Writes the waiting records captured in [since, until) to one file for a technician's USB stick:
 * a manifest line (JSON, clear), its signature by the gateway's export-signing key, then the
 * records as JSON lines sealed with AES-256-GCM under a fresh key wrapped for `recipient`. Deletes
 * nothing: the records still go up in the next window. Resolves with the manifest. Rejects
 * ATTACHE_FILE_EXISTS when `out` exists (unless `overwrite`), ATTACHE_CACHE_KEY for an unusable
 * recipient key, ATTACHE_CACHE_FULL / ATTACHE_CACHE_WRITE when the file cannot be written.
 */
export async function exportRecords(source: ExportSource, options: ExportOptions): Promise<ExportManifest> {
  if (!options.overwrite && (await exists(options.out))) throw fileExists(options.out);
  const recipient = recipientKey(options.recipient);
  const { key, encryption } = wrapDataKey(recipient, keyFingerprint(recipient, sha256));
  const cipher = createCipheriv('aes-256-gcm', key, Buffer.from(encryption.iv, 'base64'));
  const body = join(dirname(options.out), `.${randomBytes(6).toString('hex')}.export-body`);
  const plain = createHash('sha256');
  const sealed = createHash('sha256');
  const counts = {
    records: 0,
    plainBytes: 0,
    sealedBytes: 0,
    firstSeq: null as number | null,
    lastSeq: null as number | null,
  };
  let gatewayId: string | null = null;
  const seal = (chunk: Buffer | undefined): Buffer => {
    const out = chunk ? cipher.update(chunk) : cipher.final();
    sealed.update(out);
    counts.sealedBytes += out.length;
    return out;
  };
  try {
    const file = createWriteStream(body, { mode: 0o600 });
    const lines = async function* () {
      for await (const record of selected(source, options.since, options.until)) {
        const line = Buffer.from(`${record.json}\n`, 'utf8');
        plain.update(line);
        counts.plainBytes += line.length;
        counts.records++;
        counts.firstSeq ??= record.seq;
        counts.lastSeq = record.seq;
        gatewayId ??= record.gatewayId;
        options.onProgress?.(counts.records);
        yield seal(line);
      }
      yield seal(undefined);
    };
    await pipeline(lines, file);
    const manifest: ExportManifest = {
      format: 'attache-cache-export',
      version: 2,
      createdAt: new Date().toISOString(),
      gatewayId,
      since: options.since?.toISOString() ?? null,
      until: options.until?.toISOString() ?? null,
      records: counts.records,
      firstSeq: counts.firstSeq,
      lastSeq: counts.lastSeq,
      plaintextSha256: plain.digest('hex'),
      plaintextBytes: counts.plainBytes,
      ciphertextSha256: sealed.digest('hex'),
      ciphertextBytes: counts.sealedBytes,
      encryption: { ...encryption, tag: cipher.getAuthTag().toString('base64') },
      signer: signerOf(options.signingKey),
    };
    await assemble(options, manifest, body);
    return manifest;
  } catch (err) {
    throw fsError(err, `cannot write the export ${options.out}`);
  } finally {
    await rm(body, { force: true });
  }
}

/** The records of `source` with since <= capturedAt < until, in seq order, with their gatewayId. */
async function* selected(
  source: ExportSource,
  since: Date | undefined,
  until: Date | undefined,
): AsyncGenerator<StoredRecord & { gatewayId: string }> {
  let afterSeq = 0;
  for (;;) {
    const page = await source.read({ afterSeq, limit: pageRecords, maxBytes: 4_000_000 });
    if (page.length === 0) return;
    for (const stored of page) {
      const { capturedAt, gatewayId } = JSON.parse(stored.json) as AttacheRecord;
      const at = Date.parse(capturedAt);
      if ((since && at < since.getTime()) || (until && at >= until.getTime())) continue;
      yield { ...stored, gatewayId };
    }
    afterSeq = page.at(-1)?.seq ?? afterSeq;
  }
}

/**
 * Writes manifest line + signature line + body to a temporary file beside `out`, fsyncs it and puts
 * it in place: renamed over `out` with `overwrite`, else linked (never over a file that appeared).
 */
async function assemble(options: ExportOptions, manifest: ExportManifest, body: string): Promise<void> {
  const { out } = options;
  const tmp = `${out}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const file = createWriteStream(tmp, { mode: 0o600 });
    const line = Buffer.from(JSON.stringify(manifest), 'utf8');
    file.write(line);
    file.write(`\n${signBytes(line, options.signingKey)}\n`);
    await pipeline(createReadStream(body), file);
    const handle = await open(tmp, 'r+');
    await handle.sync();
    await handle.close();
    if (options.overwrite) await rename(tmp, out);
    else {
      await link(tmp, out).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST' ? fileExists(out) : err;
      });
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/** An export's manifest as read, with the bytes its signature covers. */
export interface ReadManifest {
  manifest: ExportManifest;
  /** Where the ciphertext starts. */
  bodyOffset: number;
  /** The manifest line's bytes (what the signature covers). */
  signed: Buffer;
  /** The signature line (base64). */
  signature: string;
}

/**
 * The manifest of an export file (its first line) and its signature (the second), checked for
 * shape; no key needed, and the signature is not verified here. Rejects ATTACHE_MALFORMED when the
 * file is not an export, ATTACHE_SIGNATURE for an unsigned export (version 1, before exports were
 * signed), ATTACHE_CACHE_WRITE when it cannot be read.
 */
export async function readExportManifest(file: string): Promise<ReadManifest> {
  let head: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      head = Buffer.alloc(headBytes);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw fsError(err, `cannot read the export ${file}`);
  }
  return exportHead(head);
}

/**
 * An export read once, from its start: its head ({@link readExportManifest}) and all its bytes
 * (those of the head included), for a copy that must hold what the head was read from (a USB
 * stick read twice may not answer the same). Rejects as {@link readExportManifest}; `bytes` throws
 * ATTACHE_CACHE_WRITE when the rest cannot be read.
 */
export async function streamExport(
  file: string,
): Promise<{ read: ReadManifest; bytes: AsyncIterable<Buffer> }> {
  const what = `cannot read the export ${file}`;
  const chunks = (createReadStream(file) as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const start: Buffer[] = [];
  let length = 0;
  let newlines = 0;
  try {
    while (newlines < 2 && length < headBytes) {
      const next = await chunks.next();
      if (next.done) break;
      start.push(next.value);
      length += next.value.length;
      newlines += next.value.subarray(0, headBytes).filter((byte) => byte === 0x0a).length;
    }
  } catch (err) {
    throw fsError(err, what);
  }
  const head = Buffer.concat(start);
  let read: ReadManifest;
  try {
    read = exportHead(head);
  } catch (err) {
    await chunks.return?.();
    throw err;
  }
  async function* bytes() {
    yield head;
    try {
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    } catch (err) {
      throw fsError(err, what);
    }
  }
  return { read, bytes: bytes() };
}

/** How far into an export its manifest and signature lines must end. */
const headBytes = 64 * 1024;

/**
 * The manifest and signature of an export from its first bytes (`start`: at least its first 64 KiB,
 * or the whole file when shorter; what follows is ignored), as {@link readExportManifest} reads
 * them from a file. Throws as it does.
 */
export function exportHead(start: Buffer): ReadManifest {
  const head = start.subarray(0, headBytes);
  const end = head.indexOf(0x0a);
  let manifest: ExportManifest;
  try {
    manifest = JSON.parse(head.subarray(0, end).toString('utf8')) as ExportManifest;
  } catch {
    throw malformed('the first line is not a JSON manifest');
  }
  if (end < 0 || manifest?.format !== 'attache-cache-export') throw malformed('not an attache cache export');
  if ((manifest.version as number) === 1) {
    throw new GatewayError(
      'ATTACHE_SIGNATURE',
      'export refused: it is unsigned (format version 1, written before exports were signed), so where it came from cannot be checked',
    );
  }
  if (manifest.version !== 2) throw malformed(`unknown export version ${String(manifest.version)}`);
  const second = head.indexOf(0x0a, end + 1);
  if (second < 0) throw malformed('the signature line is missing (truncated)');
  return {
    manifest,
    bodyOffset: second + 1,
    signed: head.subarray(0, end),
    signature: head.subarray(end + 1, second).toString('latin1'),
  };
}

/** Options of {@link importExport}. */
export interface ImportOptions {
  /** The recipient's private key, PEM. */
  privateKey: string | KeyObject;
  /**
   * The gateway signing keys (public, PEM, EC P-256) an export may be signed by: the importing
   * gateway's own, and any other gateway's the technician names. Any other signer is refused.
   */
  trustedSigners: readonly (string | KeyObject)[];
  /** Receives the records in seq order, in batches of at most 1,000, only after the whole file was verified. */
  onRecords: (records: AttacheRecord[]) => Promise<void>;
}

/**
 * Reads an export: verifies the manifest's signature and that its signer is trusted, checks the
 * ciphertext's hash against the (signed) manifest, decrypts the whole file once
 * to verify the GCM tag, the plaintext hash, the record count and seq range, and only then decrypts
 * it again and hands the records to `onRecords`. Resolves with the manifest. Rejects
 * ATTACHE_SIGNATURE when it is unsigned, its signature does not verify or its signer is not trusted,
 * ATTACHE_MALFORMED when anything else does not match (in every case no record was handed over),
 * ATTACHE_CACHE_KEY when the key cannot open it.
 */
export async function importExport(file: string, options: ImportOptions): Promise<ExportManifest> {
  const read = await readExportManifest(file);
  await restoreExport(file, read, exportDataKey(read, options), options.onRecords);
  return read.manifest;
}

/**
 * The key that opens the records of the export whose head is `read`: verifies the manifest's
 * signature and that its signer is trusted, then unwraps the export's own data key with the
 * recipient's private key. The data key opens this one export only. Throws ATTACHE_SIGNATURE and
 * ATTACHE_CACHE_KEY as {@link importExport} rejects.
 */
export function exportDataKey(
  read: ReadManifest,
  options: Pick<ImportOptions, 'privateKey' | 'trustedSigners'>,
): Buffer {
  verifySigned(read.signed, read.signature, read.manifest.signer, options.trustedSigners.map(signerKey));
  return unwrapDataKey(read.manifest.encryption, options.privateKey);
}

/**
 * Checks the export at `file` against its (already verified) manifest in every respect with its
 * data key ({@link exportDataKey}), then hands its records to `onRecords` in seq order, in batches
 * of at most 1,000. Rejects ATTACHE_MALFORMED, before any record was handed over, when anything
 * does not match.
 */
export async function restoreExport(
  file: string,
  read: Pick<ReadManifest, 'manifest' | 'bodyOffset'>,
  key: Buffer,
  onRecords: ImportOptions['onRecords'],
): Promise<void> {
  const { manifest, bodyOffset } = read;
  await verifyExport(file, bodyOffset, manifest, key);
  let batch: AttacheRecord[] = [];
  for await (const line of decryptedLines(file, bodyOffset, manifest, key)) {
    batch.push(JSON.parse(line) as AttacheRecord);
    if (batch.length >= pageRecords) {
      await onRecords(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await onRecords(batch);
}

function decipherOf(manifest: ExportManifest, key: Buffer) {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(manifest.encryption.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(manifest.encryption.tag, 'base64'));
  return decipher;
}

/** Throws ATTACHE_MALFORMED unless the file matches its manifest in every respect. */
async function verifyExport(
  file: string,
  offset: number,
  manifest: ExportManifest,
  key: Buffer,
): Promise<void> {
  const sealed = createHash('sha256');
  const plain = createHash('sha256');
  let sealedBytes = 0;
  let plainBytes = 0;
  const decipher = decipherOf(manifest, key);
  for await (const chunk of createReadStream(file, { start: offset })) {
    sealed.update(chunk as Buffer);
    sealedBytes += (chunk as Buffer).length;
    const out = decipher.update(chunk as Buffer);
    plain.update(out);
    plainBytes += out.length;
  }
  if (sealedBytes !== manifest.ciphertextBytes || sealed.digest('hex') !== manifest.ciphertextSha256) {
    throw malformed('the ciphertext does not match the manifest (truncated or altered)');
  }
  try {
    plain.update(decipher.final());
  } catch {
    throw malformed('authentication failed (altered, or not sealed for this key)');
  }
  if (plainBytes !== manifest.plaintextBytes || plain.digest('hex') !== manifest.plaintextSha256) {
    throw malformed('the plaintext does not match the manifest');
  }
  let records = 0;
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  for await (const line of decryptedLines(file, offset, manifest, key)) {
    const { seq } = JSON.parse(line) as AttacheRecord;
    if (lastSeq !== null && !(seq > lastSeq)) throw malformed('records are not in seq order');
    firstSeq ??= seq;
    lastSeq = seq;
    records++;
  }
  if (records !== manifest.records || firstSeq !== manifest.firstSeq || lastSeq !== manifest.lastSeq) {
    throw malformed('the record count or seq range does not match the manifest');
  }
}

/** The decrypted lines of a verified export (without their `\n`). */
async function* decryptedLines(file: string, offset: number, manifest: ExportManifest, key: Buffer) {
  const decipher = decipherOf(manifest, key);
  const text = new StringDecoder('utf8'); // a chunk may end inside a character
  let rest = '';
  for await (const chunk of createReadStream(file, { start: offset })) {
    const lines = (rest + text.write(decipher.update(chunk as Buffer))).split('\n');
    rest = lines.pop() ?? '';
    yield* lines;
  }
  rest += text.write(decipher.final()) + text.end();
  if (rest !== '') yield rest;
}
