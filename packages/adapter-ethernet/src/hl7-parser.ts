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

function readDelimiters(text: string): Hl7Delimiters {
  const field = text[3];
  const [component, repetition, escapeChar, subcomponent = '&'] = [...text.slice(4, 8)];
  const all = [field, component, repetition, escapeChar];
  const bad =
    all.some((c) => c === undefined || c === '\r' || c === '\n' || /[A-Za-z0-9 ]/.test(c)) ||
    new Set(all).size !== 4;
  if (bad || field === undefined || component === undefined || repetition === undefined || !escapeChar) {
    throw malformed('MSH-1/MSH-2 encoding characters are invalid', { hl7Code: 102, location: 'MSH^1^2' });
  }
  // MSH-2 may hold only 3 characters (no sub-component separator): then text[7] is MSH-3's first.
  const sub = text[8] === field && subcomponent !== field ? subcomponent : '&';
  return { field, component, repetition, escape: escapeChar, subcomponent: sub };
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

const escapeCodes: Record<string, keyof Hl7Delimiters> = {
  F: 'field',
  S: 'component',
  T: 'subcomponent',
  R: 'repetition',
  E: 'escape',
};

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
  const named = escapeCodes[code];
  if (named !== undefined) return d[named];
  if (code === '.br') return '\r';
  if (/^X([0-9A-Fa-f]{2})+$/.test(code)) return Buffer.from(code.slice(1), 'hex').toString('latin1');
  return '';
}

/** Encodes delimiters in a value for an outgoing message (the escape character first). */
export function encodeHl7(value: string, d: Hl7Delimiters): string {
  let out = '';
  for (const ch of value) {
    if (ch === d.escape) out += `${d.escape}E${d.escape}`;
    else if (ch === d.field) out += `${d.escape}F${d.escape}`;
    else if (ch === d.component) out += `${d.escape}S${d.escape}`;
    else if (ch === d.repetition) out += `${d.escape}R${d.escape}`;
    else if (ch === d.subcomponent) out += `${d.escape}T${d.escape}`;
    else if (ch === '\r' || ch === '\n') out += ' ';
    else out += ch;
  }
  return out;
}
