import { createHash } from 'node:crypto';
import { GatewayError, isGatewayError, type Logger, nullLogger } from '@attache/core';
import { S3Error, type S3UploadClient, type UploadedPart } from './s3-client.js';
import { chunkBytes } from './sealed-file.js';
import type { CapturedFile, UpStore } from './up-store.js';

/** Options of {@link FileUploader}. */
export interface FileUploaderOptions {
  store: UpStore;
  s3: S3UploadClient;
  /** First segment of every object key: the thing name (its role writes only under `<thing>/`). */
  prefix: string;
  /** Bytes per multipart part: a multiple of 64 KiB, at least 5 MiB against AWS (default 8 MiB). */
  partBytes?: number;
  /** Files larger than this go up in parts, resumable across windows (default 16 MiB). */
  multipartAboveBytes?: number;
  /** Tries per request before the file waits for the next window (default 3). */
  attempts?: number;
  /** Called when S3 refused the credentials (expired): the next request fetches new ones. */
  forgetCredentials?: () => void;
  /** Which files this uploader takes (default: all), e.g. the devices of one route's bucket. */
  accept?: (file: CapturedFile) => boolean;
  logger?: Logger;
}

/** The durable state of a multipart upload: kept in the store, so a later window resumes it. */
export interface MultipartState {
  key: string;
  uploadId: string;
  partBytes: number;
  parts: UploadedPart[];
}

/** What one run of {@link FileUploader.upload} did. */
export interface FileUploadReport {
  /** Files S3 confirmed and the box deleted. */
  uploaded: number;
  /** Body bytes sent to S3 (retries included). */
  bytes: number;
  /** Files that failed this window (refused, checksum differed); they wait for the next. */
  failed: number;
  /** Files still waiting. */
  remaining: number;
  /** `drained`, `byte-budget`, or `stopped` (the signal). */
  endedBy: 'drained' | 'byte-budget' | 'stopped';
}

/** The run's budget ran out: the current file stays (a multipart upload keeps its finished parts). */
class BudgetSpent extends Error {}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest();

/** The object key of a file: `<prefix>/<deviceId>/<capture date>/<sha256>`; never the file's name. */
export function objectKey(prefix: string, file: CapturedFile): string {
  return `${prefix}/${file.deviceId}/${file.capturedAt.slice(0, 10)}/${file.sha256}`;
}

/**
 * Uploads the up store's files to S3, oldest capture first, within a byte budget. A small file goes
 * up with PutObject; a large one with a multipart upload whose upload id and finished parts are kept
 * durably, so a window cut mid-file resumes at the next part. Every request carries the SHA-256 of
 * its body; a file is deleted from the box only once S3 confirmed the checksum we computed.
 */
export class FileUploader {
  readonly #store: UpStore;
  readonly #s3: S3UploadClient;
  readonly #prefix: string;
  readonly #partBytes: number;
  readonly #multipartAbove: number;
  readonly #attempts: number;
  readonly #forget: () => void;
  readonly #accept: (file: CapturedFile) => boolean;
  readonly #log: Logger;
  #sent = 0;
  #maxBytes = 0;
  #signal: AbortSignal | undefined;

  constructor(options: FileUploaderOptions) {
    const partBytes = options.partBytes ?? 8 * 1024 * 1024;
    if (!Number.isSafeInteger(partBytes) || partBytes < chunkBytes || partBytes % chunkBytes !== 0) {
      throw new TypeError('"partBytes" must be a positive multiple of 65536');
    }
    if (typeof options.prefix !== 'string' || !/^[a-zA-Z0-9:_-]{1,128}$/.test(options.prefix)) {
      throw new TypeError('"prefix" must be a thing name');
    }
    this.#store = options.store;
    this.#s3 = options.s3;
    this.#prefix = options.prefix;
    this.#partBytes = partBytes;
    this.#multipartAbove = options.multipartAboveBytes ?? 16 * 1024 * 1024;
    this.#attempts = options.attempts ?? 3;
    this.#forget = options.forgetCredentials ?? (() => undefined);
    this.#accept = options.accept ?? (() => true);
    this.#log = (options.logger ?? nullLogger).child({ module: 'files-up' });
  }

  /**
   * Uploads waiting files until none is left, `maxBytes` of body would be exceeded (0: no budget)
   * or `signal` aborts. Never rejects for one file's failure: it is logged, counted in `failed` and
   * retried next window.
   */
  async upload(options: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<FileUploadReport> {
    this.#sent = 0;
    this.#maxBytes = options.maxBytes ?? 0;
    this.#signal = options.signal;
    const report: FileUploadReport = { uploaded: 0, bytes: 0, failed: 0, remaining: 0, endedBy: 'drained' };
    const files = (await this.#store.list()).filter(this.#accept);
    let index = 0;
    for (; index < files.length; index++) {
      const file = files[index] as CapturedFile;
      try {
        const key = await this.#uploadFile(file);
        await this.#store.uploaded(file, key);
        report.uploaded++;
      } catch (err) {
        if (err instanceof BudgetSpent) {
          report.endedBy = this.#signal?.aborted ? 'stopped' : 'byte-budget';
          break;
        }
        report.failed++;
        const code = isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL';
        this.#log.error(
          { err, errorCode: code, sha256: file.sha256 },
          'file upload failed: retried next window',
        );
      }
    }
    report.bytes = this.#sent;
    report.remaining = (await this.#store.list()).filter(this.#accept).length;
    return report;
  }

  async #uploadFile(file: CapturedFile): Promise<string> {
    if (file.size > this.#multipartAbove) return this.#multipart(file);
    const key = objectKey(this.#prefix, file);
    const body = await this.#store.read(file);
    const checksum = sha256(body).toString('base64');
    const confirmed = await this.#retrying(body.length, () =>
      this.#s3.putObject(key, body, checksum, this.#metadata(file)),
    );
    this.#confirm(file, checksum, confirmed);
    return key;
  }

  async #multipart(file: CapturedFile): Promise<string> {
    try {
      return await this.#resume(file);
    } catch (err) {
      // The upload is gone (aborted by the bucket's lifecycle rule after weeks offline): the next
      // window starts the file again.
      if (err instanceof S3Error && err.s3Code === 'NoSuchUpload') {
        await this.#store.setUploadState(file.sha256, undefined);
      }
      throw err;
    }
  }

  async #resume(file: CapturedFile): Promise<string> {
    let state = await this.#store.uploadState<MultipartState>(file.sha256);
    if (!state) {
      const key = objectKey(this.#prefix, file);
      const uploadId = await this.#retrying(0, () =>
        this.#s3.createMultipartUpload(key, this.#metadata(file)),
      );
      state = { key, uploadId, partBytes: this.#partBytes, parts: [] };
      await this.#store.setUploadState(file.sha256, state);
    }
    const count = Math.ceil(file.size / state.partBytes);
    const digests: Buffer[] = [];
    for (let n = 1; n <= count; n++) {
      const start = (n - 1) * state.partBytes;
      const done = state.parts.find((p) => p.partNumber === n);
      if (done) {
        digests.push(Buffer.from(done.checksumSha256, 'base64'));
        continue;
      }
      const body = await this.#store.read(file, start, Math.min(file.size, start + state.partBytes));
      const digest = sha256(body);
      const checksum = digest.toString('base64');
      const { key, uploadId } = state;
      const part = await this.#retrying(body.length, () =>
        this.#s3.uploadPart(key, uploadId, n, body, checksum),
      );
      this.#confirm(file, checksum, part.checksumSha256);
      digests.push(digest);
      state.parts.push(part);
      await this.#store.setUploadState(file.sha256, state);
      this.#log.debug({ sha256: file.sha256, part: n, of: count }, 'part uploaded');
    }
    const expected = `${sha256(Buffer.concat(digests)).toString('base64')}-${count}`;
    const { key, uploadId, parts } = state;
    const confirmed = await this.#retrying(0, () => this.#s3.completeMultipartUpload(key, uploadId, parts));
    this.#confirm(file, expected, confirmed);
    return key;
  }

  /** S3 confirmed `confirmed`; anything but `expected` keeps the file on the box. */
  #confirm(file: CapturedFile, expected: string, confirmed: string): void {
    if (confirmed !== expected) {
      throw new GatewayError(
        'ATTACHE_FILE_UPLOAD',
        `S3 confirmed checksum ${confirmed || '(none)'} for ${file.sha256}, expected ${expected}: the file is kept`,
      );
    }
  }

  #metadata(file: CapturedFile): Record<string, string> {
    return {
      sha256: file.sha256,
      'device-id': file.deviceId,
      source: file.source,
      'captured-at': file.capturedAt,
    };
  }

  /**
   * Runs one request of `bytes` body bytes within the budget, up to `attempts` times: S3's BadDigest
   * (the bytes were damaged on the way), 5xx, network errors and expired credentials are retried.
   */
  async #retrying<T>(bytes: number, send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.#signal?.aborted || (this.#maxBytes > 0 && this.#sent + bytes > this.#maxBytes)) {
        throw new BudgetSpent();
      }
      this.#sent += bytes;
      try {
        return await send();
      } catch (err) {
        const retry =
          attempt < this.#attempts &&
          (!(err instanceof S3Error) ||
            err.status >= 500 ||
            err.s3Code === 'BadDigest' ||
            err.s3Code === 'XAmzContentSHA256Mismatch' ||
            err.s3Code === 'ExpiredToken' ||
            err.s3Code === 'RequestTimeout');
        if (err instanceof S3Error && err.s3Code === 'ExpiredToken') this.#forget();
        if (!retry) throw err;
        this.#log.warn(
          { errorCode: (err as GatewayError).code, attempt },
          `retrying: ${(err as Error).message}`,
        );
      }
    }
  }
}
