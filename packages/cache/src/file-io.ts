import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { GatewayError } from '@attache/core';
import { isDiskFull } from './bounds.js';

/** An fs failure as ATTACHE_CACHE_FULL (full disk) or ATTACHE_CACHE_WRITE, with the fs error as cause. */
export function fsError(err: unknown, what: string): unknown {
  if (err instanceof GatewayError) return err;
  if (isDiskFull(err))
    return new GatewayError('ATTACHE_CACHE_FULL', `${what}: the disk is full`, { cause: err });
  return new GatewayError('ATTACHE_CACHE_WRITE', what, { cause: err });
}

/** Size and SHA-256 (hex) of a file, read as a stream. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}
