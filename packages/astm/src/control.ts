/** E1381 control characters (ASTM E1381). */
export const STX = 0x02;
export const ETX = 0x03;
export const EOT = 0x04;
export const ENQ = 0x05;
export const ACK = 0x06;
export const NAK = 0x15;
export const ETB = 0x17;
export const CR = 0x0d;
export const LF = 0x0a;

/**
 * Checksum of an E1381 frame: the sum of `bytes` (FN through ETB/ETX inclusive) mod 256, as two
 * uppercase hex characters.
 */
export function astmChecksum(bytes: Uint8Array): string {
  let sum = 0;
  for (const byte of bytes) sum = (sum + byte) & 0xff;
  return sum.toString(16).toUpperCase().padStart(2, '0');
}
