import { createHash } from 'node:crypto';
import type { FileStore } from '@attache/cache';
import { GatewayError } from '@attache/core';
import type { JobArtifact } from './generated/job-document.js';
import type { HttpsFetcher, ProgressListener } from './https-fetcher.js';
import { rejected } from './job-status-error.js';

/** Options of {@link ArtifactSource}. */
export interface ArtifactSourceOptions {
  /** Staging store of downloaded artifacts (e.g. `<dataDir>/jobs/artifacts`), opened. */
  store: FileStore;
  fetcher: HttpsFetcher;
}

/**
 * Obtains a job's artifact and proves it: inline or downloaded (resumable, staged in a file
 * store), size and SHA-256 checked against the document, whose signed manifest the agent has
 * verified first. Only then are its bytes returned.
 */
export class ArtifactSource {
  readonly #store: FileStore;
  readonly #fetcher: HttpsFetcher;

  /** Keeps the options; no I/O. */
  constructor(options: ArtifactSourceOptions) {
    this.#store = options.store;
    this.#fetcher = options.fetcher;
  }

  /**
   * The verified bytes of `artifact`. Rejects JobStatusError REJECTED on a wrong size or hash, a
   * truncated download or a tampered staged file (which is discarded, so nothing unproven stays); ATTACHE_CANCELED / ATTACHE_UPLINK_PUBLISH when the download was cut (the bytes
   * received stay staged for the next window).
   */
  async obtain(
    artifact: JobArtifact,
    name: string,
    signal?: AbortSignal,
    onProgress?: ProgressListener,
  ): Promise<Buffer> {
    return artifact.content === undefined
      ? await this.#download(artifact, name, signal, onProgress)
      : inline(artifact);
  }

  /** Drops the staged copy of an artifact once its job is over. */
  async discard(artifact: JobArtifact): Promise<void> {
    await this.#store.remove(artifact.sha256);
  }

  async #download(
    artifact: JobArtifact,
    name: string,
    signal?: AbortSignal,
    onProgress?: ProgressListener,
  ): Promise<Buffer> {
    const expected = { sha256: artifact.sha256, size: artifact.size, name };
    const staged = await this.#read(artifact.sha256);
    if (staged) return staged;
    const partial = await this.#store.openPartial(expected);
    await this.#fetcher.fetchInto(String(artifact.url), partial, signal, onProgress);
    try {
      await partial.complete();
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'ATTACHE_MALFORMED') {
        throw rejected('ATTACHE_MALFORMED', `wrong hash: ${name} does not match its SHA-256`, err);
      }
      throw err;
    }
    const content = await this.#read(artifact.sha256);
    if (!content) throw new GatewayError('ATTACHE_INTERNAL', `${name} vanished from the staging store`);
    return content;
  }

  /** The staged content, hash-verified by the store; a tampered copy is REJECTED. */
  async #read(sha256: string): Promise<Buffer | undefined> {
    try {
      return await this.#store.read(sha256);
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'ATTACHE_CACHE_TAMPERED') {
        throw rejected(
          'ATTACHE_CACHE_TAMPERED',
          'the staged artifact no longer matches its SHA-256 (quarantined)',
          err,
        );
      }
      throw err;
    }
  }
}

function inline(artifact: JobArtifact): Buffer {
  const content = Buffer.from(String(artifact.content), 'base64');
  if (content.length !== artifact.size) {
    throw rejected('ATTACHE_MALFORMED', `wrong size: ${content.length} bytes, announced ${artifact.size}`);
  }
  if (createHash('sha256').update(content).digest('hex') !== artifact.sha256) {
    throw rejected('ATTACHE_MALFORMED', 'wrong hash: the content does not match its SHA-256');
  }
  return content;
}
