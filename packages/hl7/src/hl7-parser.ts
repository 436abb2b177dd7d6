import { isUtf8 } from 'node:buffer';
import { GatewayError } from '@attache/core';

/** The delimiters a message declares in MSH-1 and MSH-2. */
export interface Hl7Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

/** Why a message could not be parsed, with the HL7 table 0357 error code the ACK carries. */
export interface Hl7ParseProblem {
  /** Table 0357: 100 segment sequence error, 101 required field missing, 102 data type error. */
  hl7Code: 100 | 101 | 102;
  /** Where, e.g. `MSH^1^2`. */
  location: string;
}

/**
 * One segment: a span of the message's text. Field numbers are HL7's: `field(3)` of a PID is PID-3,
 * `field(9)` of MSH is MSH-9. Nothing is split until a field is read: the first read of a field finds
 * where every field of the segment starts (one pass over the segment), a read then scans only the
 * field it reads, up to the component asked for. A segment never read (a PV1 whose fields nothing
 * uses) costs only the search for its end.
 */
export class Hl7Segment {
  readonly name: string;
  readonly #text: string;
  readonly #start: number;
  readonly #end: number;
  readonly #d: Hl7Delimiters;
  /** The message header (the first segment), whose MSH-1 is the field separator itself. */
  readonly #isMsh: boolean;
  /** Where each field starts in the text (index k: the segment's k-th part), once a field was read. */
  #fields: number[] | undefined;
  /** Per field number: where each of its repetitions starts, once a repetition after the first was read. */
  #repetitions: (number[] | undefined)[] | undefined;

  /**
   * The segment `text.slice(start, end)`, named `name`, of a message with delimiters `delimiters`;
   * `header` for the message's first segment (MSH), whose fields are numbered from MSH-1, the field
   * separator. A later segment named MSH is read like any other segment.
   */
  constructor(
    name: string,
    text: string,
    start: number,
    end: number,
    delimiters: Hl7Delimiters,
    header = false,
  ) {
    this.name = name;
    this.#text = text;
    this.#start = start;
    this.#end = end;
    this.#d = delimiters;
    this.#isMsh = header;
  }

  /** Field `n` as sent (escapes not decoded), '' when absent. */
  raw(n: number): string {
    if (this.#isMsh && n === 1) return this.#d.field;
    const part = this.#part(n);
    const fields = this.#starts();
    if (part >= fields.length) return '';
    return this.#text.slice(fields[part], this.#partEnd(part));
  }

  /** The repetitions of field `n`, as sent. */
  repetitions(n: number): string[] {
    if (this.#isMsh && n === 1) return [this.#d.field];
    const starts = this.#repetitionStarts(n);
    const end = this.#partEnd(this.#part(n));
    return starts.map((from, i) =>
      this.#text.slice(from, i + 1 < starts.length ? (starts[i + 1] as number) - 1 : end),
    );
  }

  /** How many repetitions field `n` has (0 when it is empty). */
  repetitionCount(n: number): number {
    if (this.#isMsh && n === 1) return 1;
    return this.#repetitionStarts(n).length;
  }

  /** Component `c` (1-based) of repetition `rep` (0-based) of field `n`, decoded; '' when absent. */
  get(n: number, c = 1, rep = 0): string {
    if (this.#isMsh && n === 1) return c === 1 && rep === 0 ? decodeHl7(this.#d.field, this.#d) : '';
    const text = this.#text;
    const component = this.#d.component.charCodeAt(0);
    const repetition = this.#d.repetition.charCodeAt(0);
    let from: number;
    let end: number;
    if (rep === 0) {
      const part = this.#part(n);
      const fields = this.#starts();
      if (part >= fields.length) return '';
      from = fields[part] as number;
      end = this.#partEnd(part);
    } else {
      const starts = this.#repetitionStarts(n);
      if (rep >= starts.length) return '';
      from = starts[rep] as number;
      end = rep + 1 < starts.length ? (starts[rep + 1] as number) - 1 : this.#partEnd(this.#part(n));
    }
    // Skip to component c; the repetition (or field) ends at the first repetition separator.
    let seen = 1;
    let i = from;
    for (; i < end && seen < c; i++) {
      const code = text.charCodeAt(i);
      if (code === repetition) return '';
      if (code === component) {
        seen++;
        from = i + 1;
      }
    }
    if (seen < c) return '';
    const escapeCode = this.#d.escape.charCodeAt(0);
    let escaped = false;
    for (i = from; i < end; i++) {
      const code = text.charCodeAt(i);
      if (code === component || code === repetition) break;
      if (code === escapeCode) escaped = true;
    }
    if (from === i) return '';
    return escaped ? decodeHl7(text.slice(from, i), this.#d) : text.slice(from, i);
  }

  /** All components of repetition `rep` of field `n`, decoded; none when the repetition is absent or empty. */
  components(n: number, rep = 0): string[] {
    if (this.#isMsh && n === 1) return rep === 0 ? [decodeHl7(this.#d.field, this.#d)] : [];
    let from: number;
    let end: number;
    const starts = rep === 0 ? undefined : this.#repetitionStarts(n);
    if (starts === undefined) {
      const part = this.#part(n);
      const fields = this.#starts();
      if (part >= fields.length) return [];
      from = fields[part] as number;
      end = this.#partEnd(part);
    } else {
      if (rep >= starts.length) return [];
      from = starts[rep] as number;
      end = rep + 1 < starts.length ? (starts[rep + 1] as number) - 1 : this.#partEnd(this.#part(n));
    }
    const text = this.#text;
    const component = this.#d.component.charCodeAt(0);
    const repetition = this.#d.repetition.charCodeAt(0);
    const escapeCode = this.#d.escape.charCodeAt(0);
    const out: string[] = [];
    let escaped = false;
    let i = from;
    for (; i < end; i++) {
      const code = text.charCodeAt(i);
      if (code === repetition) break;
      if (code === escapeCode) escaped = true;
      else if (code === component) {
        out.push(escaped ? decodeHl7(text.slice(from, i), this.#d) : text.slice(from, i));
        escaped = false;
        from = i + 1;
      }
    }
    // An empty repetition has no components; a non-empty one ends with its last.
    if (out.length > 0 || i > from)
      out.push(escaped ? decodeHl7(text.slice(from, i), this.#d) : text.slice(from, i));
    return out;
  }

  /** The part of the segment (text between field separators) that holds field `n`: MSH-n is part n − 1. */
  #part(n: number): number {
    return this.#isMsh && n > 1 ? n - 1 : n;
  }

  /** Where each part starts, found on the first read. */
  #starts(): number[] {
    let fields = this.#fields;
    if (fields === undefined) {
      const text = this.#text;
      const separator = this.#d.field.charCodeAt(0);
      fields = [this.#start];
      for (let i = this.#start; i < this.#end; i++) if (text.charCodeAt(i) === separator) fields.push(i + 1);
      this.#fields = fields;
    }
    return fields;
  }

  /** Where part `k` (< the number of parts) ends. */
  #partEnd(k: number): number {
    const fields = this.#starts();
    return k + 1 < fields.length ? (fields[k + 1] as number) - 1 : this.#end;
  }

  /** Where each repetition of field `n` starts; none when the field is empty. */
  #repetitionStarts(n: number): number[] {
    this.#repetitions ??= [];
    let starts = this.#repetitions[n];
    if (starts === undefined) {
      starts = [];
      const part = this.#part(n);
      const fields = this.#starts();
      if (part < fields.length) {
        const from = fields[part] as number;
        const end = this.#partEnd(part);
        if (end > from) {
          const text = this.#text;
          const repetition = this.#d.repetition.charCodeAt(0);
          starts.push(from);
          for (let i = from; i < end; i++) if (text.charCodeAt(i) === repetition) starts.push(i + 1);
        }
      }
      this.#repetitions[n] = starts;
    }
    return starts;
  }
}

/** A parsed HL7 v2 message. */
export interface Hl7Message {
  delimiters: Hl7Delimiters;
  segments: Hl7Segment[];
  /** The MSH segment. */
  msh: Hl7Segment;
  /** The text of the MSH segment as sent. */
  mshText: string;
}

function malformed(message: string, problem: Hl7ParseProblem): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', message, { cause: problem });
}

/** The table 0357 code and location attached to a parse error, or undefined for another error. */
export function parseProblem(err: unknown): Hl7ParseProblem | undefined {
  if (!(err instanceof GatewayError)) return undefined;
  const cause = err.cause as Partial<Hl7ParseProblem> | undefined;
  return typeof cause?.hl7Code === 'number' ? (cause as Hl7ParseProblem) : undefined;
}

/**
 * The encoding of a message's bytes: Latin-1 when its MSH-18 (character set, first repetition)
 * declares `8859/1`; otherwise UTF-8 when they are valid UTF-8, else Latin-1 (every byte kept). The
 * declaration decides only where the bytes alone could mislead: Latin-1 text such as `Ã©` is also
 * valid UTF-8. One pass over the MSH segment at most.
 */
export function hl7Encoding(bytes: Buffer): 'utf8' | 'latin1' {
  return declaresLatin1(bytes) || !isUtf8(bytes) ? 'latin1' : 'utf8';
}

/** Decodes a message's bytes in {@link hl7Encoding}'s encoding. */
export function decodeHl7Bytes(bytes: Buffer): string {
  return bytes.toString(hl7Encoding(bytes));
}

const latin1Charset = Buffer.from('8859/1');

/** Whether the MSH segment that starts `bytes` names `8859/1` in MSH-18 (ASCII in both encodings). */
function declaresLatin1(bytes: Buffer): boolean {
  if (bytes.length < 8 || bytes[0] !== 0x4d || bytes[1] !== 0x53 || bytes[2] !== 0x48) return false;
  const field = bytes[3];
  const repetition = bytes[5];
  let separators = 0;
  let start = -1;
  let i = 3;
  for (; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x0d || b === 0x0a || (start >= 0 && (b === field || b === repetition))) break;
    if (b === field && ++separators === 17) start = i + 1;
  }
  return start >= 0 && bytes.subarray(start, i).equals(latin1Charset);
}

/** A delimiter an ACK can carry: printable ASCII, not a letter, digit or space. */
function isDelimiter(c: string | undefined): c is string {
  if (c === undefined || c.length !== 1) return false;
  const code = c.charCodeAt(0);
  const letterOrDigit =
    (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
  return code > 0x20 && code < 0x7f && !letterOrDigit;
}

/** Characters an undeclared sub-component separator is taken from: `&` unless it is in use. */
const spareSubcomponents = ['&', '$', '#', '%', '*', '@', '!', '/', '+'];

/** The last delimiters read and the MSH characters they were read from (a sender's are always the same). */
let lastDelimiters: { from: string; delimiters: Hl7Delimiters } | undefined;

/** The delimiters of the MSH segment `text`; the last ones again when its MSH-1 and MSH-2 are the same. */
function delimitersOf(text: string): Hl7Delimiters {
  // What readDelimiters reads: MSH-1 and the six characters after it.
  const from = text.slice(3, 10);
  if (lastDelimiters?.from === from) return lastDelimiters.delimiters;
  const delimiters = readDelimiters(text);
  lastDelimiters = { from, delimiters };
  return delimiters;
}

function readDelimiters(text: string): Hl7Delimiters {
  const field = text[3];
  // MSH-2 runs to the next field separator: component, repetition, escape, then the sub-component
  // separator (optional before v2.5) and the truncation character (v2.7, not used here).
  const head = text.slice(4, 10);
  const end = field === undefined ? -1 : head.indexOf(field);
  const [component, repetition, escapeChar, declaredSub] = [...(end === -1 ? head : head.slice(0, end))];
  const declared = [
    field,
    component,
    repetition,
    escapeChar,
    ...(declaredSub === undefined ? [] : [declaredSub]),
  ];
  if (
    (end === -1 && head.length > 5) ||
    !declared.every(isDelimiter) ||
    new Set(declared).size !== declared.length ||
    field === undefined ||
    component === undefined ||
    repetition === undefined ||
    escapeChar === undefined
  ) {
    throw malformed(
      'MSH-1/MSH-2 encoding characters are invalid: each must be a distinct printable ASCII character, not a letter, digit or space',
      { hl7Code: 102, location: 'MSH^1^2' },
    );
  }
  // Nine spares for at most four characters in use: one is always free.
  const subcomponent = declaredSub ?? (spareSubcomponents.find((c) => !declared.includes(c)) as string);
  return { field, component, repetition, escape: escapeChar, subcomponent };
}

/** Whether `code` is a character JavaScript's `\s` matches (what a leading `^\s+` would strip). */
function isSpace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** Whether `text.slice(start, end)` starts with a segment name (`[A-Z][A-Z0-9]{2}`) ending at `end` or at the field separator. */
function hasSegmentName(text: string, start: number, end: number, separator: number): boolean {
  if (end - start !== 3 && (end - start < 3 || text.charCodeAt(start + 3) !== separator)) return false;
  const a = text.charCodeAt(start);
  const b = text.charCodeAt(start + 1);
  const c = text.charCodeAt(start + 2);
  const upper = (x: number) => x >= 0x41 && x <= 0x5a;
  const digit = (x: number) => x >= 0x30 && x <= 0x39;
  return upper(a) && (upper(b) || digit(b)) && (upper(c) || digit(c));
}

/** The index of `char` in `text` at or after `from`, or the text's length. */
function nextOrEnd(text: string, char: string, from: number): number {
  const at = text.indexOf(char, from);
  return at === -1 ? text.length : at;
}

/**
 * Parses an HL7 v2 message (without its MLLP frame). Segments are split on CR, LF or CR LF; empty
 * lines are skipped. Delimiters come from MSH-1/MSH-2. Throws a GatewayError `ATTACHE_MALFORMED`
 * when the text does not start with an MSH segment or its encoding characters are invalid; the
 * error's `cause` holds the {@link Hl7ParseProblem} (see `parseProblem`). Messages never quote the
 * text. One pass over the text finds the segments and checks their names; fields are found when read
 * (see {@link Hl7Segment}).
 */
export function parseHl7Message(text: string): Hl7Message {
  const length = text.length;
  const segments: Hl7Segment[] = [];
  let d: Hl7Delimiters | undefined;
  let separator = 0;
  let mshText = '';
  // The next CR and the next LF at or after `pos` (`length` when none): each found by one search
  // that resumes where the last one stopped, so the text is scanned once for each.
  let cr = -1;
  let lf = -1;
  let pos = 0;
  while (pos < length) {
    if (cr < pos) cr = nextOrEnd(text, '\r', pos);
    if (lf < pos) lf = nextOrEnd(text, '\n', pos);
    const end = cr < lf ? cr : lf;
    let start = pos;
    pos = end + 1;
    if (end === start) continue;
    if (d === undefined) {
      while (start < end && isSpace(text.charCodeAt(start))) start++;
      if (end - start < 8 || !text.startsWith('MSH', start)) {
        throw malformed('message does not start with an MSH segment', { hl7Code: 100, location: 'MSH' });
      }
      mshText = text.slice(start, end);
      d = delimitersOf(mshText);
      separator = d.field.charCodeAt(0);
      segments.push(new Hl7Segment('MSH', text, start, end, d, true));
      continue;
    }
    if (!hasSegmentName(text, start, end, separator)) {
      const n = segments.length + 1;
      throw malformed(`segment ${n} has no valid name`, { hl7Code: 100, location: `${n}` });
    }
    segments.push(new Hl7Segment(text.slice(start, start + 3), text, start, end, d));
  }
  if (d === undefined) {
    throw malformed('message does not start with an MSH segment', { hl7Code: 100, location: 'MSH' });
  }
  return { delimiters: d, segments, msh: segments[0] as Hl7Segment, mshText };
}

const escapeCodes = new Map<string, keyof Hl7Delimiters>([
  ['F', 'field'],
  ['S', 'component'],
  ['T', 'subcomponent'],
  ['R', 'repetition'],
  ['E', 'escape'],
]);

/** Decodes HL7 escapes: `\F\ \S\ \T\ \R\ \E\`, `\Xhh..\` (hex), `\.br\` (line break); others dropped. */
export function decodeHl7(value: string, d: Hl7Delimiters): string {
  if (!value.includes(d.escape)) return value;
  let out = '';
  let pos = 0;
  for (;;) {
    const start = value.indexOf(d.escape, pos);
    const end = start === -1 ? -1 : value.indexOf(d.escape, start + 1);
    if (start === -1 || end === -1) return out + value.slice(pos);
    out += value.slice(pos, start);
    out += escapeText(value.slice(start + 1, end), d);
    pos = end + 1;
  }
}

function escapeText(code: string, d: Hl7Delimiters): string {
  const named = escapeCodes.get(code);
  if (named !== undefined) return d[named];
  if (code === '.br') return '\r';
  if (/^X([0-9A-Fa-f]{2})+$/.test(code)) return Buffer.from(code.slice(1), 'hex').toString('latin1');
  return '';
}

/**
 * Encodes a value for an outgoing message: each delimiter as its escape (`\F\`, `\S\`, …) and each
 * control character (CR, LF, the MLLP frame bytes VT and FS, …) as `\Xhh\`, so that the value can
 * neither end a field or segment nor cut the MLLP frame it travels in.
 */
export function encodeHl7(value: string, d: Hl7Delimiters): string {
  if (!needsEncoding(value, d)) return value;
  let out = '';
  for (const ch of value) {
    const code = ch.charCodeAt(0);
    const named = delimiterCode(ch, d);
    if (named !== undefined) out += `${d.escape}${named}${d.escape}`;
    else if (code < 0x20 || code === 0x7f)
      out += `${d.escape}X${code.toString(16).toUpperCase().padStart(2, '0')}${d.escape}`;
    else out += ch;
  }
  return out;
}

/** The escape letter of a delimiter character, or undefined for any other character. */
function delimiterCode(ch: string, d: Hl7Delimiters): string | undefined {
  if (ch === d.escape) return 'E';
  if (ch === d.field) return 'F';
  if (ch === d.component) return 'S';
  if (ch === d.repetition) return 'R';
  if (ch === d.subcomponent) return 'T';
  return undefined;
}

/** Whether `value` holds a delimiter or a control character (what {@link encodeHl7} escapes): one pass. */
function needsEncoding(value: string, d: Hl7Delimiters): boolean {
  const e = d.escape.charCodeAt(0);
  const f = d.field.charCodeAt(0);
  const c = d.component.charCodeAt(0);
  const r = d.repetition.charCodeAt(0);
  const s = d.subcomponent.charCodeAt(0);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === e || code === f || code === c || code === r || code === s) {
      return true;
    }
  }
  return false;
}

/**
 * Field `n` of `segment` rebuilt for an outgoing message with delimiters `to`: every repetition,
 * component and sub-component decoded with the message's delimiters, then encoded with `to`. Nothing
 * the sender wrote reaches the output unescaped.
 */
export function reencodeHl7Field(
  segment: Hl7Segment,
  n: number,
  from: Hl7Delimiters,
  to: Hl7Delimiters,
): string {
  const raw = segment.raw(n);
  // With the same delimiters, a field without escapes or control characters decodes and encodes to itself.
  if (from === to && !hasEscapeOrControl(raw, from.escape)) return raw;
  return segment
    .repetitions(n)
    .map((rep) =>
      rep
        .split(from.component)
        .map((component) =>
          component
            .split(from.subcomponent)
            .map((sub) => encodeHl7(decodeHl7(sub, from), to))
            .join(to.subcomponent),
        )
        .join(to.component),
    )
    .join(to.repetition);
}

/** Whether `value` holds the escape character or a control character. */
function hasEscapeOrControl(value: string, escapeChar: string): boolean {
  const e = escapeChar.charCodeAt(0);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || code === e) return true;
  }
  return false;
}
