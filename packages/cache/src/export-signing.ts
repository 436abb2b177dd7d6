import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GatewayError } from '@attache/core';

/** Who signed an export: the manifest's `signer` block. */
export interface ExportSigner {
  /** The signing public key, SPKI DER, base64 (EC P-256). */
  publicKey: string;
  /** SHA-256 (hex) of that SPKI DER: the key's fingerprint, as `attache cache signing-key` prints it. */
  keySha256: string;
}

/** The gateway's export-signing key pair. */
export interface ExportSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SHA-256 (hex) of the public key's SPKI DER. */
  fingerprint: string;
}

function signatureError(what: string, cause?: unknown): GatewayError {
  return new GatewayError('ATTACHE_SIGNATURE', `export refused: ${what}`, { cause });
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** SHA-256 (hex) of a public key's SPKI DER. */
export function publicKeyFingerprint(key: KeyObject): string {
  return createHash('sha256').update(spki(key)).digest('hex');
}

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

function pairOf(privateKey: KeyObject): ExportSigningKey {
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, fingerprint: publicKeyFingerprint(publicKey) };
}

/**
 * Loads the gateway's export-signing key (PEM PKCS#8, ECDSA P-256) from `path`, or creates it
 * (mode 0600, its directory 0700 when created, linked into place so a concurrent creator wins
 * cleanly) when missing. Rejects ATTACHE_CACHE_KEY when the file grants any permission to group or
 * others, is not an EC P-256 private key, or cannot be read or created.
 */
export async function loadOrCreateSigningKey(path: string): Promise<ExportSigningKey> {
  const keyError = (what: string, cause?: unknown) =>
    new GatewayError('ATTACHE_CACHE_KEY', `export signing key ${path}: ${what}`, { cause });
  try {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      throw keyError(`mode ${(mode & 0o777).toString(8)} grants access to group or others (want 600)`);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(await readFile(path, 'utf8'));
    } catch (err) {
      throw keyError('is not a PEM private key', err);
    }
    if (!isP256(key)) throw keyError('must be an EC P-256 private key');
    return pairOf(key);
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw keyError('cannot be read', err);
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(privateKey.export({ type: 'pkcs8', format: 'pem' }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateSigningKey(path);
    throw keyError('cannot be created', err);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return pairOf(privateKey);
}

/** A trusted signer's public key from PEM (or a KeyObject); ATTACHE_CACHE_KEY unless EC P-256. */
export function signerKey(pem: string | KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key =
      typeof pem === 'string'
        ? createPublicKey(pem)
        : createPublicKey(pem.export({ type: 'spki', format: 'pem' }));
  } catch (err) {
    throw new GatewayError('ATTACHE_CACHE_KEY', 'a trusted signer is not a PEM public key', { cause: err });
  }
  if (!isP256(key)) throw new GatewayError('ATTACHE_CACHE_KEY', 'a trusted signer must be an EC P-256 key');
  return key;
}

/** The manifest's signer block for `key`. */
export function signerOf(key: ExportSigningKey): ExportSigner {
  return { publicKey: spki(key.publicKey).toString('base64'), keySha256: key.fingerprint };
}

/** ECDSA P-256 / SHA-256 signature (DER, base64) of `bytes`. */
export function signBytes(bytes: Buffer, key: ExportSigningKey): string {
  return sign('sha256', bytes, key.privateKey).toString('base64');
}

/**
 * Checks that `signature` (base64) is the signature of `bytes` by the key the manifest names in
 * `signer`, and that this key is one of `trusted`. Throws ATTACHE_SIGNATURE saying which.
 */
export function verifySigned(
  bytes: Buffer,
  signature: string,
  signer: ExportSigner | undefined,
  trusted: readonly KeyObject[],
): void {
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: Buffer.from(String(signer?.publicKey), 'base64'),
      format: 'der',
      type: 'spki',
    });
  } catch (err) {
    throw signatureError('the manifest does not name a valid signing key', err);
  }
  let valid = false;
  try {
    valid = isP256(key) && verify('sha256', bytes, key, Buffer.from(signature, 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) throw signatureError('the signature does not verify (altered manifest, or forged)');
  const fingerprint = publicKeyFingerprint(key);
  if (!trusted.some((k) => publicKeyFingerprint(k) === fingerprint)) {
    throw signatureError(
      `signed by key ${fingerprint.slice(0, 16)}…, which is not a trusted gateway signing key here (give the exporting gateway's key with --signer)`,
    );
  }
}
