import {
  encodeHl7,
  type Hl7Delimiters,
  type Hl7Message,
  hl7Encoding,
  reencodeHl7Field,
} from './hl7-parser.js';
import { CR, MLLP_END, MLLP_START } from './mllp-framer.js';

/** MSA-1 original-mode acknowledgment codes (HL7 table 0008). */
export type Hl7AckCode = 'AA' | 'AE' | 'AR';

/** The error an AE/AR carries in its ERR segment. */
export interface Hl7AckError {
  /** HL7 table 0357 code, e.g. 101 required field missing, 203 unsupported version id. */
  hl7Code: number;
  /** ERR-8 user message: a reason, never the message's content. */
  reason: string;
  /** ERR-2 error location, e.g. `OBX^3^5` (segment^sequence^field). */
  location?: string;
}

/** Options of {@link buildHl7Ack}. */
export interface Hl7AckOptions {
  /** The message being acknowledged; undefined when it had no usable MSH (garbage). */
  message: Hl7Message | undefined;
  code: Hl7AckCode;
  /** Required for AE and AR. */
  error?: Hl7AckError;
  /** MSH-10 of the ACK itself (unique per gateway). */
  controlId: string;
  /** MSH-7, `YYYYMMDDHHMMSS`. Default: now, local time. */
  timestamp?: string;
  /** MSH-3 of the ACK when the message had none to swap from. Default `ATTACHE`. */
  application?: string;
}

/** Table 0357 texts for the codes this adapter sends. */
const errorTexts: Record<number, string> = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  200: 'Unsupported message type',
  203: 'Unsupported version id',
  207: 'Application internal error',
};

const defaultDelimiters: Hl7Delimiters = {
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
};

/** The latest second {@link ackTimestamp} formatted, and its text. */
let stampedSecond = Number.NaN;
let stampedText = '';

/** `hl7Timestamp()` of now, formatted once per second (an ACK per message would format each). */
function ackTimestamp(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== stampedSecond) {
    stampedText = hl7Timestamp(new Date(now));
    stampedSecond = second;
  }
  return stampedText;
}

/** `YYYYMMDDHHMMSS` of `date` in local time. */
export function hl7Timestamp(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}${p(date.getHours())}${p(
    date.getMinutes(),
  )}${p(date.getSeconds())}`;
}

/**
 * Builds an original-mode application ACK (HL7 v2.5.1 §2.9), segments ended by CR, without MLLP
 * framing: MSH with MSH-3/4 and MSH-5/6 swapped, MSH-9 `ACK^<trigger>^ACK`, new MSH-10, MSH-11/12
 * echoed; `MSA|code|<MSH-10 of the message>`; on AE/AR an ERR segment (ERR-3 table 0357, ERR-4 `E`,
 * ERR-8 reason). Uses the message's own delimiters (which the parser only accepts when they are
 * distinct printable characters). Built from data: every field taken from the message is decoded
 * and encoded again, so no delimiter, segment end or MLLP frame byte the sender wrote (raw or as an
 * escape such as `\X1C\`) can end up unescaped in the ACK.
 * @throws TypeError when `code` is AE or AR without `error`.
 */
export function buildHl7Ack(options: Hl7AckOptions): string {
  const { message, code, error, controlId } = options;
  if (code !== 'AA' && error === undefined) throw new TypeError('"error" is required for AE and AR');
  const d = message?.delimiters ?? defaultDelimiters;
  const copy = (n: number) => (message === undefined ? '' : reencodeHl7Field(message.msh, n, d, d));
  const trigger = encodeHl7(message?.msh.get(9, 2) ?? '', d);
  const f = d.field;
  const encoding = `${d.component}${d.repetition}${d.escape}${d.subcomponent}`;
  const header = [
    `MSH${f}${encoding}`,
    copy(5) || encodeHl7(options.application ?? 'ATTACHE', d),
    copy(6),
    copy(3),
    copy(4),
    options.timestamp ?? ackTimestamp(),
    '',
    `ACK${trigger ? `${d.component}${trigger}${d.component}ACK` : ''}`,
    encodeHl7(controlId, d),
    copy(11) || 'P',
    copy(12) || '2.5',
  ].join(f);
  const segments = [header, ['MSA', code, copy(10)].join(f)];
  if (error !== undefined) segments.push(errSegment(error, d));
  return `${segments.join('\r')}\r`;
}

/**
 * The ACK of {@link buildHl7Ack} as it goes on the wire: one MLLP frame, in the encoding of the
 * message it answers (`payload`, the frame's content as received), as {@link hl7Encoding} reads it:
 * Latin-1 when its MSH-18 says `8859/1`, else UTF-8 when it was valid UTF-8, else Latin-1. Never holds VT or FS but as the frame's own start and end.
 */
export function hl7AckFrame(payload: Buffer, options: Hl7AckOptions): Buffer {
  const text = buildHl7Ack(options);
  const encoding = hl7Encoding(payload);
  // The frame is written in place: start byte, the ACK, end bytes (no intermediate buffers).
  const length = Buffer.byteLength(text, encoding);
  const frame = Buffer.allocUnsafe(length + 3);
  frame[0] = MLLP_START;
  frame.write(text, 1, length, encoding);
  frame[length + 1] = MLLP_END;
  frame[length + 2] = CR;
  return frame;
}

function errSegment(error: Hl7AckError, d: Hl7Delimiters): string {
  const text = errorTexts[error.hl7Code] ?? 'Application error';
  const code = [String(error.hl7Code), text, 'HL70357'].join(d.component);
  const location = (error.location ?? '').split('^').map((part) => encodeHl7(part, d));
  return ['ERR', '', location.join(d.component), code, 'E', '', '', '', encodeHl7(error.reason, d)].join(
    d.field,
  );
}
