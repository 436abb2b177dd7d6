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
 * One segment. Field numbers are HL7's: `field(3)` of a PID is PID-3, `field(9)` of MSH is MSH-9.
 * A field is split into repetitions and components once, on first use.
 */
export class Hl7Segment {
  readonly name: string;
  readonly #fields: string[];
  readonly #d: Hl7Delimiters;
  /** Per field number: its repetitions, each split into components (as sent). */
  readonly #split: (string[][] | undefined)[] = [];

  constructor(name: string, fields: string[], delimiters: Hl7Delimiters) {
    this.name = name;
    this.#fields = fields;
    this.#d = delimiters;
  }

  /** Field `n` as sent (escapes not decoded), '' when absent. */
  raw(n: number): string {
    return this.#fields[n] ?? '';
  }

  /** The repetitions of field `n`, as sent. */
  repetitions(n: number): string[] {
    const raw = this.raw(n);
    if (raw === '') return [];
    return raw.includes(this.#d.repetition) ? raw.split(this.#d.repetition) : [raw];
  }

  /** Component `c` (1-based) of repetition `rep` (0-based) of field `n`, decoded; '' when absent. */
  get(n: number, c = 1, rep = 0): string {
    return decodeHl7(this.#components(n, rep)[c - 1] ?? '', this.#d);
  }

  /** All components of repetition `rep` of field `n`, decoded. */
  components(n: number, rep = 0): string[] {
    return this.#components(n, rep).map((c) => decodeHl7(c, this.#d));
  }

  /** The components of repetition `rep` of field `n` as sent; none when the repetition is absent or empty. */
  #components(n: number, rep: number): string[] {
    let split = this.#split[n];
    if (split === undefined) {
      const { component } = this.#d;
      split = this.repetitions(n).map((r) =>
        r === '' ? [] : r.includes(component) ? r.split(component) : [r],
      );
      this.#split[n] = split;
    }
    return split[rep] ?? [];
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

/** Decodes a message's bytes: UTF-8 when they are valid UTF-8, else Latin-1 (every byte kept). */
export function decodeHl7Bytes(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

/** A delimiter an ACK can carry: printable ASCII, not a letter, digit or space. */
function isDelimiter(c: string | undefined): c is string {
  if (c === undefined || c.length !== 1) return false;
  const code = c.charCodeAt(0);
  return code > 0x20 && code < 0x7f && !/[A-Za-z0-9]/.test(c);
}

/** Characters an undeclared sub-component separator is taken from: `&` unless it is in use. */
const spareSubcomponents = ['&', '$', '#', '%', '*', '@', '!', '/', '+'];

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

/**
 * Parses an HL7 v2 message (without its MLLP frame). Segments are split on CR, LF or CR LF; empty
 * lines are skipped. Delimiters come from MSH-1/MSH-2. Throws a GatewayError `ATTACHE_MALFORMED`
 * when the text does not start with an MSH segment or its encoding characters are invalid; the
 * error's `cause` holds the {@link Hl7ParseProblem} (see `parseProblem`). Messages never quote the
 * text.
 */
export function parseHl7Message(text: string): Hl7Message {
  const lines = text.split(/\r\n|\r|\n/).filter((line) => line.length > 0);
  const first = lines[0]?.replace(/^\s+/, '');
  if (first === undefined || !first.startsWith('MSH') || first.length < 8) {
    throw malformed('message does not start with an MSH segment', { hl7Code: 100, location: 'MSH' });
  }
  const d = readDelimiters(first);
  const segments = [first, ...lines.slice(1)].map((line, i) => {
    const parts = line.split(d.field);
    const name = parts[0] ?? '';
    if (!/^[A-Z][A-Z0-9]{2}$/.test(name)) {
      throw malformed(`segment ${i + 1} has no valid name`, { hl7Code: 100, location: `${i + 1}` });
    }
    // MSH-1 is the field separator itself: shift MSH so that index n is MSH-n.
    const fields = i === 0 ? [name, d.field, ...parts.slice(1)] : parts;
    return new Hl7Segment(name, fields, d);
  });
  return { delimiters: d, segments, msh: segments[0] as Hl7Segment, mshText: first };
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
