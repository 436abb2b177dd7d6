import { astmChecksum } from '@attache/astm/control';

/** What a probe recognized in the bytes read at one port setting. */
export type ProbeProtocol = 'astm' | 'kv-line' | 'text-line' | 'none';

/** The evidence {@link scoreTraffic} found. */
export interface TrafficScore {
  protocol: ProbeProtocol;
  /** Higher is better; 0 when nothing was recognized. */
  score: number;
  bytes: number;
  /** ENQ bytes (an ASTM instrument asking to send). */
  enq: number;
  /** ASTM frames `STX FN text ETB|ETX C1 C2` with a valid checksum, and with a wrong one. */
  validFrames: number;
  badFrames: number;
  /** Complete printable lines, and those holding `KEY=VALUE` tokens. */
  lines: number;
  kvLines: number;
  /** Bytes neither printable ASCII nor an ASTM or line control character. */
  noise: number;
}

const ENQ = 0x05;
const STX = 0x02;
const ETX = 0x03;
const ETB = 0x17;
/** Control bytes that valid traffic holds: STX ETX EOT ENQ ACK NAK ETB TAB LF CR. */
const CONTROL = new Set([0x02, 0x03, 0x04, 0x05, 0x06, 0x15, 0x17, 0x09, 0x0a, 0x0d]);
const kvToken = /(?:^|[\t ])[A-Za-z][A-Za-z0-9_.-]{0,31}=\S/;

function isPrintable(byte: number): boolean {
  return byte >= 0x20 && byte <= 0x7e;
}

function countFrames(bytes: Buffer): { valid: number; bad: number } {
  let valid = 0;
  let bad = 0;
  for (let start = bytes.indexOf(STX); start >= 0; start = bytes.indexOf(STX, start + 1)) {
    let end = start + 1;
    while (end < bytes.length && bytes[end] !== ETX && bytes[end] !== ETB && bytes[end] !== STX) end++;
    if (end + 2 >= bytes.length || bytes[end] === STX) continue;
    const sent = bytes
      .subarray(end + 1, end + 3)
      .toString('latin1')
      .toUpperCase();
    if (sent === astmChecksum(bytes.subarray(start + 1, end + 1))) valid++;
    else bad++;
  }
  return { valid, bad };
}

function countLines(bytes: Buffer): { lines: number; kvLines: number } {
  let lines = 0;
  let kvLines = 0;
  // The first piece may be cut (the probe started listening mid-line), the last is unterminated.
  const pieces = bytes
    .toString('latin1')
    .split(/[\r\n]+/)
    .slice(1, -1);
  for (const line of pieces) {
    if (line.length < 3 || ![...line].every((ch) => ch === '\t' || isPrintable(ch.charCodeAt(0)))) continue;
    lines++;
    if (kvToken.test(line)) kvLines++;
  }
  return { lines, kvLines };
}

/**
 * Scores bytes read from a serial line: ASTM (ENQ, frames with valid checksums) first, then
 * `KEY=VALUE` lines, then plain printable lines. Traffic with more than 10 % noise bytes (what a
 * wrong baud rate or framing gives) scores 0. Pure.
 */
export function scoreTraffic(bytes: Buffer): TrafficScore {
  let enq = 0;
  let noise = 0;
  for (const byte of bytes) {
    if (byte === ENQ) enq++;
    else if (!isPrintable(byte) && !CONTROL.has(byte)) noise++;
  }
  const frames = countFrames(bytes);
  const { lines, kvLines } = countLines(bytes);
  const base = {
    bytes: bytes.length,
    enq,
    validFrames: frames.valid,
    badFrames: frames.bad,
    lines,
    kvLines,
    noise,
  };
  const quality = bytes.length === 0 ? 0 : 1 - noise / bytes.length;
  if (quality < 0.9) return { protocol: 'none', score: 0, ...base };
  if (frames.valid > 0 || (enq > 0 && lines === 0)) {
    return { protocol: 'astm', score: (frames.valid * 10 + enq * 4) * quality, ...base };
  }
  if (kvLines > 0 && kvLines * 2 >= lines)
    return { protocol: 'kv-line', score: kvLines * 3 * quality, ...base };
  if (lines >= 2) return { protocol: 'text-line', score: lines * quality, ...base };
  return { protocol: 'none', score: 0, ...base };
}
