import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ExportManifest, exportRecords, type LevelCache, loadOrCreateSigningKey } from '@attache/cache';
import { GatewayError } from '@attache/core';
import { exportStaging } from './paths.js';

/** What `cache export` asks a running gateway for over the control socket. */
export interface ExportRequest {
  /** The recipient's public key, PEM (the text, not a path: the gateway opens no file it is named). */
  recipient: string;
  since?: string;
  until?: string;
}

/** A progress event of an export: records written so far, of about `total`. */
export interface ExportProgress {
  records: number;
  total: number;
}

function dateOf(name: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const at = new Date(String(value));
  if (Number.isNaN(at.getTime())) throw new TypeError(`"${name}" must be a date or time`);
  return at;
}

/**
 * Writes an export of `cache` into the staging directory (created owner-only), signed with the
 * gateway's export-signing key, reporting progress at most every 1,000 records. Resolves with the
 * staged file and its manifest; the caller copies it out and removes it.
 */
export async function stageExport(
  cache: LevelCache,
  paths: { dataDir: string; signingKey: string },
  params: unknown,
  notify: (progress: ExportProgress) => void,
): Promise<{ file: string; manifest: ExportManifest }> {
  const request = (params ?? {}) as Partial<ExportRequest>;
  if (typeof request.recipient !== 'string') throw new TypeError('"recipient" must be a PEM public key');
  const dir = exportStaging(paths.dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${randomBytes(8).toString('hex')}.attache`);
  const total = (await cache.stats()).records;
  const manifest = await exportRecords(cache, {
    out: file,
    recipient: request.recipient,
    signingKey: await loadOrCreateSigningKey(paths.signingKey),
    since: dateOf('since', request.since),
    until: dateOf('until', request.until),
    onProgress: (records) => {
      if (records % 1000 === 0) notify({ records, total });
    },
  });
  return { file, manifest };
}

/**
 * Copies `from` to `out` through a temporary file beside `out` (fsynced), then puts it in place:
 * renamed over `out` with `force`, else linked, so an existing file is never replaced.
 * Rejects ATTACHE_FILE_EXISTS when `out` exists and `force` is not set.
 */
export async function placeFile(from: string, out: string, force: boolean): Promise<void> {
  await placeStream(createReadStream(from), out, force);
}

/**
 * Writes `source` to a temporary file beside `out` (0600, fsynced) and, once `complete` resolved
 * too (what says the bytes are whole: the result of the process that wrote them), puts it in place
 * as {@link placeFile} does. When either rejects, nothing is left beside `out` and `out` is
 * untouched; rejects with the first error.
 */
export async function placeStream(
  source: Readable,
  out: string,
  force: boolean,
  complete: Promise<unknown> = Promise.resolve(),
): Promise<void> {
  const tmp = `${out}.${randomBytes(6).toString('hex')}.tmp`;
  const written = pipeline(source, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
  try {
    try {
      await Promise.all([written, complete]);
    } catch (err) {
      // The temporary file may still be being created: removing it before the copy has stopped
      // would leave it beside `out` once created.
      source.destroy();
      await written.catch(() => undefined);
      throw err;
    }
    const handle = await open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (force) await rename(tmp, out);
    else
      await link(tmp, out).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST'
          ? new GatewayError(
              'ATTACHE_FILE_EXISTS',
              `${out} exists: choose another name, or replace it with --force`,
            )
          : err;
      });
  } finally {
    await rm(tmp, { force: true });
  }
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): {
  update(progress: ExportProgress): void;
  done(): void;
} {
  let drawn = false;
  return {
    update({ records, total }) {
      if (!stream.isTTY) return;
      const width = 30;
      const filled = total > 0 ? Math.min(width, Math.round((records / total) * width)) : width;
      stream.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${records}/${total} records`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}

/** The gateway's export-signing public key (PEM) and its fingerprint, for another gateway's `--signer`. */
export async function signingKeyInfo(path: string): Promise<{ publicKey: string; fingerprint: string }> {
  const key = await loadOrCreateSigningKey(path);
  return {
    publicKey: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: key.fingerprint,
  };
}
