import { randomBytes } from 'node:crypto';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

/** Lowercase RFC 4648 base32 without padding. */
function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const byte of bytes) {
    acc = ((acc << 8) | byte) & 0xfff; // at most 4 leftover bits + 8 new ones matter
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(acc >>> bits) & 31];
    }
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * A new random patient token: `pt_` + 26 characters of `[a-z2-7]` encoding 128 random bits.
 * Independent of the patient identifier, as 45 CFR 164.514(c) requires of a re-identification code.
 */
export function newPatientToken(): string {
  return `pt_${base32(randomBytes(16))}`;
}
