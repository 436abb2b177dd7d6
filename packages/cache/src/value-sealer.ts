import {
  type CipherGCM,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type Hmac,
  hkdfSync,
  type KeyObject,
  randomFillSync,
} from 'node:crypto';
import type { CacheKeyring } from './keyring.js';

/** Format version, first byte of every sealed value. */
const version = 1;
const ivBytes = 12;
const tagBytes = 16;
/** IVs are taken from a pool filled 4,096 at a time: one getrandom call per 4,096 seals, not one each. */
const ivPoolBytes = ivBytes * 4096;

/** Length of the header (version, id length, id) of a sealed value; 0 when it has none. */
function headerLength(sealed: Uint8Array): number {
  if (sealed.length < 2 || sealed[0] !== version) return 0;
  return 2 + (sealed[1] ?? 0);
}

/**
 * Bytes of plaintext in a sealed value (GCM's ciphertext is as long as its plaintext), read from
 * the layout without decrypting; 0 for a value too short to be sealed.
 */
export function plainLength(sealed: Uint8Array): number {
  return Math.max(0, sealed.length - headerLength(sealed) - ivBytes - tagBytes);
}

/** The LevelDB key as abstract-level stores it, `!sublevel!key`: part of the AAD. */
export function levelKey(sublevel: string, key: string): string {
  return `!${sublevel}!${key}`;
}

/** HMACs made ahead by `prepare()`: a keyed append uses two (patient token, idempotency key). */
const preparedHmacs = 2;

/** A cipher made ahead by `prepare()` and the IV it was made with. */
interface PreparedCipher {
  cipher: CipherGCM;
  iv: Buffer;
}

/** Bytes of the reusable AAD buffer; a longer AAD (a very long state key) gets its own. */
const aadScratchBytes = 512;

/**
 * Seals and opens the cache's values with AES-256-GCM, and derives the token table's keys.
 * Layout: version (1 byte) ‖ id length n (1 byte) ‖ key id (n bytes, ASCII) ‖ IV (12) ‖ tag (16)
 * ‖ ciphertext. AAD: the header ‖ the LevelDB key (`!sublevel!key`).
 */
export class ValueSealer {
  readonly #keyring: CacheKeyring;
  /** The token index key as a KeyObject: an HMAC made from one skips importing the raw bytes. */
  readonly #indexKey: KeyObject;
  /** The header and the key of `keyring.currentId`, looked up once. */
  readonly #header: Buffer;
  /** The current key as a KeyObject: a cipher made from one skips importing the raw bytes. */
  readonly #secret: KeyObject;
  readonly #ivPool = Buffer.alloc(ivPoolBytes);
  #ivOffset = ivPoolBytes;
  /** Where each seal's AAD is assembled (GCM reads it at setAAD, so it is free again afterwards). */
  readonly #aad = Buffer.alloc(aadScratchBytes);
  /** The last view of `#aad` handed out, reused while the AAD's length is the same. */
  #aadView: Buffer;
  /** The same for opening (a value may carry another key's header). */
  readonly #openAad = Buffer.alloc(aadScratchBytes);
  /** KeyObjects of the keyring's older keys, made when a value sealed under one is first opened. */
  readonly #openingKeys = new Map<string, KeyObject>();
  /** The next seal's cipher, made by `prepare()`; used once. */
  #cipher: PreparedCipher | undefined;
  /** The next token keys' HMACs (keyed, nothing hashed yet), made by `prepare()`; each used once. */
  readonly #hmacs: Hmac[] = [];

  /** Throws a TypeError when the keyring lacks its current or index key, or one is not 32 bytes. */
  constructor(keyring: CacheKeyring) {
    this.#keyring = keyring;
    const current = keyring.key(keyring.currentId);
    const first = keyring.key(keyring.indexId);
    if (!/^[\x21-\x7e]{1,64}$/.test(keyring.currentId)) {
      throw new TypeError('"keyring.currentId" must be 1-64 printable ASCII characters');
    }
    if (current?.length !== 32 || first?.length !== 32) {
      throw new TypeError('"keyring" must hold 32-byte keys for its currentId and indexId');
    }
    this.#secret = createSecretKey(current);
    const id = Buffer.from(keyring.currentId, 'ascii');
    this.#header = Buffer.concat([Buffer.from([version, id.length]), id]);
    this.#header.copy(this.#aad);
    this.#aadView = this.#aad.subarray(0, this.#header.length);
    this.#indexKey = createSecretKey(
      Buffer.from(hkdfSync('sha256', first, Buffer.alloc(0), 'attache-token-index', 32)),
    );
  }

  /**
   * `plain` (bytes, or text sealed as UTF-8) sealed under the current key, bound to the LevelDB key
   * `key` (see {@link levelKey}): one cipher and one output buffer per value.
   */
  seal(key: string, plain: Uint8Array | string): Buffer {
    const header = this.#header;
    const start = header.length;
    const length = typeof plain === 'string' ? Buffer.byteLength(plain, 'utf8') : plain.length;
    const sealed = Buffer.allocUnsafe(start + ivBytes + tagBytes + length);
    header.copy(sealed, 0);
    const prepared = this.#cipher;
    this.#cipher = undefined;
    let cipher: CipherGCM;
    if (prepared === undefined) cipher = this.#newCipher(this.#nextIvInto(sealed, start));
    else {
      prepared.iv.copy(sealed, start);
      cipher = prepared.cipher;
    }
    cipher.setAAD(this.#aadOf(key));
    const body = typeof plain === 'string' ? cipher.update(plain, 'utf8') : cipher.update(plain);
    cipher.final();
    cipher.getAuthTag().copy(sealed, start + ivBytes);
    body.copy(sealed, start + ivBytes + tagBytes);
    return sealed;
  }

  /**
   * Makes ahead what the next seal and the next two token keys need (a cipher with its fresh IV,
   * two keyed HMACs): about half of their CPU, spent when the caller has time, e.g. while a synced
   * write is on the disk. Each is used once; the IV is taken from the pool as a seal's would be.
   */
  prepare(): void {
    if (this.#cipher === undefined) {
      const iv = Buffer.allocUnsafe(ivBytes);
      this.#cipher = { cipher: this.#newCipher(this.#nextIvInto(iv, 0)), iv };
    }
    while (this.#hmacs.length < preparedHmacs) this.#hmacs.push(createHmac('sha256', this.#indexKey));
  }

  #newCipher(iv: Buffer): CipherGCM {
    return createCipheriv('aes-256-gcm', this.#secret, iv);
  }

  /**
   * The header ‖ the UTF-8 `prefix` ‖ `key`, in the scratch buffer when it fits (the same view
   * object while the length is the same: GCM has read the AAD before the next call rewrites it).
   */
  #aadOf(key: string, prefix = ''): Buffer {
    const start = this.#header.length;
    if (start + (prefix.length + key.length) * 3 > aadScratchBytes) {
      return Buffer.concat([this.#header, Buffer.from(prefix + key, 'utf8')]);
    }
    const aad = this.#aad;
    let end = prefix === '' ? start : start + aad.write(prefix, start, 'utf8');
    end += aad.write(key, end, 'utf8');
    if (this.#aadView.length !== end) this.#aadView = aad.subarray(0, end);
    return this.#aadView;
  }

  /**
   * The plaintext of a value stored under the LevelDB key `prefix` + `key` (a caller that has the
   * key in two parts need not join them); undefined when it fails authentication (altered, moved from
   * another key, sealed under a key this keyring lacks, or not a sealed value at all).
   */
  open(key: string, sealed: Uint8Array, prefix = ''): Buffer | undefined {
    const start = headerLength(sealed);
    if (start === 0 || sealed.length < start + ivBytes + tagBytes) return undefined;
    // LevelDB hands out Buffers: a view is made only for another Uint8Array.
    const value = Buffer.isBuffer(sealed)
      ? sealed
      : Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
    const secret = this.#openingKey(value, start);
    if (secret === undefined) return undefined;
    const iv = value.subarray(start, start + ivBytes);
    const decipher = createDecipheriv('aes-256-gcm', secret, iv);
    // Under the current key the header is the one `#aad` already starts with: no copy, no view of it.
    decipher.setAAD(
      secret === this.#secret
        ? this.#aadOf(key, prefix)
        : this.#openingAad(value.subarray(0, start), prefix + key),
    );
    decipher.setAuthTag(value.subarray(start + ivBytes, start + ivBytes + tagBytes));
    try {
      const plain = decipher.update(value.subarray(start + ivBytes + tagBytes));
      decipher.final(); // GCM returns nothing more here; it throws when the tag does not match
      return plain;
    } catch {
      return undefined;
    }
  }

  /** The key named in a sealed value's header, as a KeyObject made once per key id; undefined when unknown. */
  #openingKey(value: Buffer, start: number): KeyObject | undefined {
    const header = this.#header;
    // Most values are sealed under the current key: compare the header's bytes, no string made.
    if (start === header.length && value.compare(header, 0, start, 0, start) === 0) return this.#secret;
    const id = value.subarray(2, start).toString('ascii');
    let secret = this.#openingKeys.get(id);
    if (secret === undefined) {
      const raw = this.#keyring.key(id);
      if (raw?.length !== 32) return undefined;
      secret = createSecretKey(raw);
      this.#openingKeys.set(id, secret);
    }
    return secret;
  }

  /** The AAD of an opened value (its header ‖ the UTF-8 key), in a scratch buffer when it fits. */
  #openingAad(header: Buffer, key: string): Buffer {
    if (header.length + key.length * 3 > aadScratchBytes)
      return Buffer.concat([header, Buffer.from(key, 'utf8')]);
    header.copy(this.#openAad, 0);
    return this.#openAad.subarray(0, header.length + this.#openAad.write(key, header.length, 'utf8'));
  }

  /** A fresh random 96-bit IV, copied from the pool into `out` at `offset` (refilling the pool never changes one in use). */
  #nextIvInto(out: Buffer, offset: number): Buffer {
    if (this.#ivOffset >= ivPoolBytes) {
      randomFillSync(this.#ivPool);
      this.#ivOffset = 0;
    }
    this.#ivPool.copy(out, offset, this.#ivOffset, this.#ivOffset + ivBytes);
    this.#ivOffset += ivBytes;
    return out.subarray(offset, offset + ivBytes);
  }

  /** The token table's key for a patient: HMAC-SHA-256 under the token index key, hex. */
  tokenKey(patientId: string): string {
    const hmac = this.#hmacs.pop() ?? createHmac('sha256', this.#indexKey);
    return hmac.update(patientId, 'utf8').digest('hex');
  }
}

/** The key id of a sealed value, for logs; undefined when it has no header. */
export function sealedKeyId(sealed: Uint8Array): string | undefined {
  const start = headerLength(sealed);
  return start === 0 ? undefined : Buffer.from(sealed.subarray(2, start)).toString('ascii');
}
