import { type ByteOrder, type RegisterType, registerCount } from './register-map.js';

/** A decoded value: a number, text (strings, and 64-bit integers beyond 2^53), or null (NaN, ±∞). */
export type DecodedValue = number | string | null;

/** How to decode one value. Defaults: `order` ABCD, `scale` 1, `offset` 0, `bit` 0. */
export interface DecodeSpec {
  type: RegisterType;
  order?: ByteOrder;
  /** For `bit`: 0 = least significant. */
  bit?: number;
  scale?: number;
  offset?: number;
}

const swapsWords = (order: ByteOrder) => order === 'CDAB' || order === 'DCBA';
const swapsBytes = (order: ByteOrder) => order === 'BADC' || order === 'DCBA';

/**
 * Reorders register bytes between the device's `order` and big-endian (ABCD). `CDAB` reverses the
 * word order, `BADC` swaps the bytes of each word, `DCBA` does both; each is its own inverse, so the
 * same call encodes and decodes. Returns a new buffer; `bytes` must hold whole registers.
 */
export function reorder(bytes: Buffer, order: ByteOrder): Buffer {
  if (bytes.length % 2 !== 0) throw new TypeError('"bytes" must hold whole 16-bit registers');
  const words = bytes.length / 2;
  const out = Buffer.alloc(bytes.length);
  for (let i = 0; i < words; i++) {
    const from = swapsWords(order) ? words - 1 - i : i;
    const hi = bytes[2 * from] ?? 0;
    const lo = bytes[2 * from + 1] ?? 0;
    out[2 * i] = swapsBytes(order) ? lo : hi;
    out[2 * i + 1] = swapsBytes(order) ? hi : lo;
  }
  return out;
}

/** Text packed two characters per register; only the byte order within words applies. */
function decodeString(bytes: Buffer, order: ByteOrder): string {
  const text = (swapsBytes(order) ? reorder(bytes, 'BADC') : bytes).toString('latin1');
  const nul = text.indexOf('\0');
  return (nul === -1 ? text : text.slice(0, nul)).trimEnd();
}

/** The raw (unscaled) value of big-endian `be` bytes. */
function raw(be: Buffer, spec: DecodeSpec): number | bigint {
  switch (spec.type) {
    case 'bool':
      return be.readUInt16BE(0) === 0 ? 0 : 1;
    case 'bit':
      return (be.readUInt16BE(0) >> (spec.bit ?? 0)) & 1;
    case 'int16':
      return be.readInt16BE(0);
    case 'uint16':
      return be.readUInt16BE(0);
    case 'int32':
      return be.readInt32BE(0);
    case 'uint32':
      return be.readUInt32BE(0);
    case 'float32':
      return be.readFloatBE(0);
    case 'int64':
      return be.readBigInt64BE(0);
    case 'uint64':
      return be.readBigUInt64BE(0);
    case 'float64':
      return be.readDoubleBE(0);
    case 'string':
      throw new TypeError('strings have no numeric raw value');
  }
}

/**
 * Decodes one value from the bytes of its registers as sent (2 bytes per register, each register
 * big-endian on the wire). Numbers become `raw × scale + offset`; `bool`/`bit` give 0 or 1, unscaled.
 * A 64-bit integer that is not a safe integer stays an exact decimal string when unscaled. NaN and ±∞
 * as sent give null. Throws a TypeError when `bytes` is shorter than the type needs, and a RangeError
 * when `scale` and `offset` turn a finite value into ±∞ or NaN (a register map that does not fit the
 * device's values: the caller marks that one value bad).
 */
export function decodeRegisters(bytes: Buffer, spec: DecodeSpec): DecodedValue {
  const order = spec.order ?? 'ABCD';
  if (spec.type === 'string') return decodeString(bytes, order);
  const width = registerCount(spec.type) * 2;
  if (bytes.length < width) throw new TypeError(`${spec.type} needs ${width} bytes, got ${bytes.length}`);
  const value = raw(reorder(bytes.subarray(0, width), order), spec);
  if (spec.type === 'bool' || spec.type === 'bit') return value as number;
  return scaled(value, spec.scale ?? 1, spec.offset ?? 0);
}

/** `raw × scale + offset`; exact for unscaled values, text for unscaled integers beyond 2^53. */
function scaled(value: number | bigint, scale: number, offset: number): DecodedValue {
  if (typeof value === 'bigint') {
    if (scale === 1 && offset === 0) {
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : value.toString();
    }
    return finite(Number(value) * scale + offset);
  }
  if (!Number.isFinite(value)) return null;
  return scale === 1 && offset === 0 ? value : finite(value * scale + offset);
}

function finite(value: number): number {
  if (!Number.isFinite(value)) throw new RangeError('scale and offset make the value non-finite');
  return value;
}
