import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { GatewayError } from '@attache/core';

/** How the data key of an export is wrapped for its recipient. */
export type ExportScheme = 'ECDH-ES-P256-HKDF-SHA256+A256GCM' | 'RSA-OAEP-SHA256+A256GCM';

/** The manifest's `encryption` block: enough for the holder of the private key to unwrap the data key. */
export interface ExportEncryption {
  scheme: ExportScheme;
  /** SHA-256 (hex) of the recipient's public key (SPKI DER): which key opens the file. */
  recipientKeySha256: string;
  /** ECDH: the ephemeral public key, SPKI DER, base64. */
  ephemeralPublicKey?: string;
  /** RSA: the data key encrypted with RSA-OAEP-SHA-256, base64. */
  wrappedKey?: string;
  /** AES-256-GCM IV (96 bits), base64. */
  iv: string;
  /** AES-256-GCM tag over the whole ciphertext, base64 (set when the export is complete). */
  tag: string;
}

const info = Buffer.from('attache-cache-export v1', 'utf8');

function spki(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** SHA-256 (hex) of a public key's SPKI DER. */
export function keyFingerprint(key: KeyObject, hash: (data: Buffer) => string): string {
  return hash(spki(key));
}

function keyError(what: string, cause?: unknown): GatewayError {
  return new GatewayError('ATTACHE_CACHE_KEY', what, cause === undefined ? undefined : { cause });
}

/** A public key from PEM (or a KeyObject); ATTACHE_CACHE_KEY unless it is EC P-256 or RSA (>= 2048 bits). */
export function recipientKey(pem: string | KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key =
      typeof pem === 'string' ? createPublicKey(pem) : pem.type === 'private' ? createPublicKey(pem) : pem;
  } catch (err) {
    throw keyError('the recipient key is not a PEM public key', err);
  }
  const { namedCurve, modulusLength } = key.asymmetricKeyDetails ?? {};
  const ok =
    (key.asymmetricKeyType === 'ec' && namedCurve === 'prime256v1') ||
    (key.asymmetricKeyType === 'rsa' && (modulusLength ?? 0) >= 2048);
  if (!ok) throw keyError('the recipient key must be EC P-256 or RSA of at least 2048 bits');
  return key;
}

/**
 * A fresh AES-256 data key and how it is wrapped for `recipient`: ECDH with an ephemeral P-256
 * key then HKDF-SHA-256 (salt: the ephemeral SPKI), or RSA-OAEP-SHA-256 of a random key.
 */
export function wrapDataKey(
  recipient: KeyObject,
  fingerprint: string,
): { key: Buffer; encryption: Omit<ExportEncryption, 'tag'> } {
  const iv = randomBytes(12).toString('base64');
  if (recipient.asymmetricKeyType === 'ec') {
    const ephemeral = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const salt = spki(ephemeral.publicKey);
    const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
    const key = Buffer.from(hkdfSync('sha256', shared, salt, info, 32));
    const scheme = 'ECDH-ES-P256-HKDF-SHA256+A256GCM';
    return {
      key,
      encryption: {
        scheme,
        recipientKeySha256: fingerprint,
        ephemeralPublicKey: salt.toString('base64'),
        iv,
      },
    };
  }
  const key = randomBytes(32);
  const wrapped = publicEncrypt(
    { key: recipient, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    key,
  );
  const scheme = 'RSA-OAEP-SHA256+A256GCM';
  return {
    key,
    encryption: { scheme, recipientKeySha256: fingerprint, wrappedKey: wrapped.toString('base64'), iv },
  };
}

/** The data key of an export, unwrapped with the recipient's private key (PEM). ATTACHE_CACHE_KEY when it cannot be. */
export function unwrapDataKey(encryption: ExportEncryption, privatePem: string | KeyObject): Buffer {
  let privateKey: KeyObject;
  try {
    privateKey = typeof privatePem === 'string' ? createPrivateKey(privatePem) : privatePem;
  } catch (err) {
    throw keyError('the key is not a PEM private key', err);
  }
  const fingerprint = createHash('sha256')
    .update(spki(createPublicKey(privateKey)))
    .digest('hex');
  if (fingerprint !== encryption.recipientKeySha256) {
    throw keyError("this private key is not the export's recipient (its public key fingerprint differs)");
  }
  try {
    if (encryption.scheme === 'ECDH-ES-P256-HKDF-SHA256+A256GCM') {
      const salt = Buffer.from(encryption.ephemeralPublicKey ?? '', 'base64');
      const publicKey = createPublicKey({ key: salt, format: 'der', type: 'spki' });
      const shared = diffieHellman({ privateKey, publicKey });
      return Buffer.from(hkdfSync('sha256', shared, salt, info, 32));
    }
    if (encryption.scheme === 'RSA-OAEP-SHA256+A256GCM') {
      const wrapped = Buffer.from(encryption.wrappedKey ?? '', 'base64');
      return privateDecrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        wrapped,
      );
    }
  } catch (err) {
    throw keyError('this private key cannot open the export (not its recipient?)', err);
  }
  throw keyError(`unknown export scheme ${String(encryption.scheme)}`);
}
