/** The four delimiters an E1394 H record declares (`H|\^&`). */
export interface AstmDelimiters {
  /** Separates fields (`|`). */
  field: string;
  /** Separates repeats of a field (`\`). */
  repeat: string;
  /** Separates components of a field (`^`). */
  component: string;
  /** Starts and ends an escape sequence (`&`). */
  escape: string;
}

/** The delimiters of `H|\^&`, the usual set. */
export const DEFAULT_DELIMITERS: Readonly<AstmDelimiters> = Object.freeze({
  field: '|',
  repeat: '\\',
  component: '^',
  escape: '&',
});

/**
 * Decodes E1394 escape sequences in one component: `&F&` `&S&` `&R&` `&E&` become the delimiters,
 * `&Xhh…&` the bytes it spells (latin1), highlighting `&H&` `&N&` is removed. An unknown or
 * unterminated sequence is kept as sent.
 */
export function decodeEscapes(value: string, d: AstmDelimiters): string {
  if (!value.includes(d.escape)) return value;
  let out = '';
  let i = 0;
  while (i < value.length) {
    const start = value.indexOf(d.escape, i);
    const end = start < 0 ? -1 : value.indexOf(d.escape, start + 1);
    if (end < 0) return out + value.slice(i);
    out += value.slice(i, start);
    const decoded = decodeSequence(value.slice(start + 1, end), d);
    if (decoded === undefined) {
      out += d.escape;
      i = start + 1;
    } else {
      out += decoded;
      i = end + 1;
    }
  }
  return out;
}

function decodeSequence(body: string, d: AstmDelimiters): string | undefined {
  switch (body) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'R':
      return d.repeat;
    case 'E':
      return d.escape;
    case 'H':
    case 'N':
      return '';
  }
  if (/^X(?:[0-9A-Fa-f]{2})+$/.test(body)) return Buffer.from(body.slice(1), 'hex').toString('latin1');
  return undefined;
}

/** Escapes delimiters in `value` so it can be written into a field (the reverse of `decodeEscapes`). */
export function encodeEscapes(value: string, d: AstmDelimiters): string {
  const codes = new Map([
    [d.escape, 'E'],
    [d.field, 'F'],
    [d.component, 'S'],
    [d.repeat, 'R'],
  ]);
  return [...value].map((ch) => (codes.has(ch) ? `${d.escape}${codes.get(ch)}${d.escape}` : ch)).join('');
}

/** Accessors for the fields of one record, numbered as in E1394 (field 1 is the record type). */
export class AstmFieldReader {
  readonly #fields: string[];
  readonly #d: AstmDelimiters;

  constructor(fields: string[], delimiters: AstmDelimiters) {
    this.#fields = fields;
    this.#d = delimiters;
  }

  /** True when field `n` is present and not empty. */
  has(n: number): boolean {
    return (this.#fields[n - 1] ?? '') !== '';
  }

  /** The repeats of field `n`, each split into decoded components. */
  repeats(n: number): string[][] {
    const raw = this.#fields[n - 1] ?? '';
    if (raw === '') return [];
    return raw
      .split(this.#d.repeat)
      .map((rep) => rep.split(this.#d.component).map((c) => decodeEscapes(c, this.#d)));
  }

  /** The decoded components of the first repeat of field `n` (empty when the field is empty). */
  components(n: number): string[] {
    return this.repeats(n)[0] ?? [];
  }

  /** The first component of field `n`, decoded; '' when absent. */
  text(n: number): string {
    return this.components(n)[0] ?? '';
  }

  /** Field `n` as text, or null when empty. */
  optional(n: number): string | null {
    const value = this.text(n);
    return value === '' ? null : value;
  }
}
