import type { Hl7Delimiters } from '@attache/hl7';
import { decodeHl7 } from '@attache/hl7';

/**
 * The HL7 parser as it was written first, kept as the specification the single-pass parser is
 * checked against (`parser-model.test.ts`): every line split into fields, every field read split into
 * repetitions and components. Quadratic nowhere, but it allocates a string per field of every segment.
 */
export class ReferenceSegment {
  readonly name: string;
  readonly #fields: string[];
  readonly #d: Hl7Delimiters;

  constructor(name: string, fields: string[], delimiters: Hl7Delimiters) {
    this.name = name;
    this.#fields = fields;
    this.#d = delimiters;
  }

  raw(n: number): string {
    return this.#fields[n] ?? '';
  }

  repetitions(n: number): string[] {
    const raw = this.raw(n);
    if (raw === '') return [];
    return raw.includes(this.#d.repetition) ? raw.split(this.#d.repetition) : [raw];
  }

  get(n: number, c = 1, rep = 0): string {
    return decodeHl7(this.#components(n, rep)[c - 1] ?? '', this.#d);
  }

  components(n: number, rep = 0): string[] {
    return this.#components(n, rep).map((c) => decodeHl7(c, this.#d));
  }

  #components(n: number, rep: number): string[] {
    const { component } = this.#d;
    const r = this.repetitions(n)[rep];
    if (r === undefined || r === '') return [];
    return r.includes(component) ? r.split(component) : [r];
  }
}

/** The parse, or the table 0357 problem it refused the text with. */
export type ReferenceParse =
  | { segments: ReferenceSegment[]; mshText: string; delimiters: Hl7Delimiters }
  | { problem: { hl7Code: number; location: string; message: string } };

const spareSubcomponents = ['&', '$', '#', '%', '*', '@', '!', '/', '+'];

function isDelimiter(c: string | undefined): c is string {
  if (c === undefined || c.length !== 1) return false;
  const code = c.charCodeAt(0);
  return code > 0x20 && code < 0x7f && !/[A-Za-z0-9]/.test(c);
}

function readDelimiters(text: string): Hl7Delimiters | undefined {
  const field = text[3];
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
    return undefined;
  }
  const subcomponent = declaredSub ?? (spareSubcomponents.find((c) => !declared.includes(c)) as string);
  return { field, component, repetition, escape: escapeChar, subcomponent };
}

export function referenceParse(text: string): ReferenceParse {
  const lines = text.split(/\r\n|\r|\n/).filter((line) => line.length > 0);
  const first = lines[0]?.replace(/^\s+/, '');
  if (first === undefined || !first.startsWith('MSH') || first.length < 8) {
    return {
      problem: { hl7Code: 100, location: 'MSH', message: 'message does not start with an MSH segment' },
    };
  }
  const d = readDelimiters(first);
  if (d === undefined) {
    return {
      problem: {
        hl7Code: 102,
        location: 'MSH^1^2',
        message:
          'MSH-1/MSH-2 encoding characters are invalid: each must be a distinct printable ASCII character, not a letter, digit or space',
      },
    };
  }
  const segments: ReferenceSegment[] = [];
  for (const [i, line] of [first, ...lines.slice(1)].entries()) {
    const parts = line.split(d.field);
    const name = parts[0] ?? '';
    if (!/^[A-Z][A-Z0-9]{2}$/.test(name)) {
      return {
        problem: { hl7Code: 100, location: `${i + 1}`, message: `segment ${i + 1} has no valid name` },
      };
    }
    const fields = i === 0 ? [name, d.field, ...parts.slice(1)] : parts;
    segments.push(new ReferenceSegment(name, fields, d));
  }
  return { segments, mshText: first, delimiters: d };
}
