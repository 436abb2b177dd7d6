import { astmChecksum, CR, ETB, ETX, LF, STX } from './control.js';
import { DEFAULT_DELIMITERS, encodeEscapes } from './fields.js';

/** Longest text of one E1381 frame, in characters. */
const MAX_FRAME_TEXT = 240;

export interface NoInformationReplyOptions {
  /** H.14 date/time of the reply, `YYYYMMDDHHMMSS` (the instrument's local time). Required. */
  timestamp: string;
  /** H.5 sender name (escaped as needed). Default `Attache`. */
  senderName?: string;
  /** H.12 processing ID. Default `P` (production). */
  processingId?: string;
}

/**
 * The host's "no information available" answer to a Q record: an H record and `L|1|I` (termination
 * code I), with the `|\^&` delimiters, without CR. Send them with `frameAstmRecords` in a new
 * transfer (ENQ … EOT) after the instrument's EOT.
 * @throws TypeError when `timestamp` is not 14 digits or `processingId` is not one letter.
 */
export function buildNoInformationReply(options: NoInformationReplyOptions): string[] {
  const { timestamp, senderName = 'Attache', processingId = 'P' } = options;
  if (!/^\d{14}$/.test(timestamp)) throw new TypeError('"timestamp" must be 14 digits (YYYYMMDDHHMMSS)');
  if (!/^[A-Z]$/.test(processingId)) throw new TypeError('"processingId" must be one uppercase letter');
  const sender = encodeEscapes(senderName, DEFAULT_DELIMITERS);
  return [`H|\\^&|||${sender}|||||||${processingId}|E1394-97|${timestamp}`, 'L|1|I'];
}

/** `YYYYMMDDHHMMSS` in the gateway's local time, for the H record of a reply. */
export function astmLocalTimestamp(date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

/**
 * Frames records as an E1381 sender does: each record plus CR starts a new frame, split into frames
 * of at most 240 characters (ETB between them, ETX on the record's last), FN from `firstFn` mod 8,
 * uppercase checksum, CR LF trailer. ENQ, EOT and waiting for each ACK are the caller's.
 * @throws TypeError when `firstFn` is not an integer 0–7 or a record holds CR or LF.
 */
export function frameAstmRecords(records: readonly string[], firstFn = 1): Buffer[] {
  if (!Number.isInteger(firstFn) || firstFn < 0 || firstFn > 7) throw new TypeError('"firstFn" must be 0-7');
  const frames: Buffer[] = [];
  let fn = firstFn;
  for (const record of records) {
    if (/[\r\n]/.test(record)) throw new TypeError('"records" must not contain CR or LF');
    const text = `${record}\r`;
    for (let start = 0; start < text.length; start += MAX_FRAME_TEXT) {
      const last = start + MAX_FRAME_TEXT >= text.length;
      frames.push(frame(fn, text.slice(start, start + MAX_FRAME_TEXT), last));
      fn = (fn + 1) % 8;
    }
  }
  return frames;
}

function frame(fn: number, text: string, last: boolean): Buffer {
  const body = Buffer.concat([Buffer.from(`${fn}${text}`, 'latin1'), Buffer.from([last ? ETX : ETB])]);
  return Buffer.concat([
    Buffer.from([STX]),
    body,
    Buffer.from(`${astmChecksum(body)}`, 'latin1'),
    Buffer.from([CR, LF]),
  ]);
}
