import { createPublicKey, verify } from 'node:crypto';

/** A raw ECDSA P-256 signature is r‖s, 32 bytes each; anything else is read as DER. */
const rawP256Length = 64;

/**
 * True when `signatureBase64` is a valid ECDSA P-256 / SHA-256 signature of `content` under
 * `publicKeyPem` (an SPKI PEM public key, or a certificate). The signature may be DER-encoded or
 * raw r‖s (64 bytes), the two forms AWS IoT code signing produces. A key that is not P-256, or a
 * malformed signature, gives false. Throws a TypeError when the key cannot be parsed.
 */
export function verifySignature(content: Uint8Array, signatureBase64: string, publicKeyPem: string): boolean {
  const key = createPublicKey(publicKeyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('"publicKeyPem" must be an EC P-256 public key');
  }
  const signature = Buffer.from(signatureBase64, 'base64');
  const dsaEncoding = signature.length === rawP256Length ? 'ieee-p1363' : 'der';
  try {
    return verify('sha256', content, { key, dsaEncoding }, signature);
  } catch {
    return false;
  }
}
