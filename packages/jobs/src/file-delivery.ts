import type { FileStore } from '@attache/cache';
import type { FileDeliveryJob } from './generated/job-document.js';
import type { ApplyContext, JobHandler } from './handler.js';

/**
 * Delivers a verified file into the gateway's file store (`<dataDir>/files`), where `attache files
 * list` and `attache files export` find it. Storing is idempotent (content-addressed).
 */
export class FileDeliveryHandler implements JobHandler<FileDeliveryJob> {
  readonly #files: FileStore;

  /** `files`: the gateway's file store, opened. */
  constructor(files: FileStore) {
    this.#files = files;
  }

  /** Stores the file under its SHA-256; resolves with its name and hash. Rejects with the store's errors. */
  async apply(context: ApplyContext<FileDeliveryJob>): Promise<Record<string, string>> {
    const { document, content } = context;
    const name = document.deviceId ? `${document.deviceId}/${document.name}` : document.name;
    const stored = await this.#files.put(content, {
      sha256: document.artifact.sha256,
      size: document.artifact.size,
      name,
    });
    context.log.info({ sha256: stored.sha256, size: stored.size }, 'file delivered');
    return { file: document.name, sha256: stored.sha256 };
  }
}
