import { ucumAtoms, ucumPrefixes } from './generated/ucum-table.js';

/** Longest unit checked; longer ones are not UCUM for the gateway (the record schema allows 32). */
const MAX_UNIT = 64;
/** Deepest `(…)` nesting accepted. */
const MAX_DEPTH = 8;

/** Reads one UCUM expression (the c/s grammar of the UCUM specification, §1–§8) over `text`. */
class UcumReader {
  readonly #s: string;
  #i = 0;

  constructor(text: string) {
    this.#s = text;
  }

  /** `main-term := "/" term | term`, and nothing after it. */
  valid(): boolean {
    if (this.#s[this.#i] === '/') this.#i++;
    return this.#term(0) && this.#i === this.#s.length;
  }

  /** `term := component (("." | "/") component)*` */
  #term(depth: number): boolean {
    if (!this.#component(depth)) return false;
    while (this.#s[this.#i] === '.' || this.#s[this.#i] === '/') {
      this.#i++;
      if (!this.#component(depth)) return false;
    }
    return true;
  }

  /** `component := "(" term ")" | annotatable annotation? | annotation | factor` */
  #component(depth: number): boolean {
    if (this.#s[this.#i] === '(') {
      if (depth >= MAX_DEPTH) return false;
      this.#i++;
      if (!this.#term(depth + 1) || this.#s[this.#i] !== ')') return false;
      this.#i++;
      return true;
    }
    const start = this.#i;
    while (this.#i < this.#s.length && !'./(){}'.includes(this.#s[this.#i] as string)) {
      // Square brackets belong to the atom (`[in_i]`, `m[Hg]`) and may hold `.` or `/`.
      if (this.#s[this.#i] === '[') {
        const close = this.#s.indexOf(']', this.#i);
        if (close === -1) return false;
        this.#i = close + 1;
      } else this.#i++;
    }
    const unit = this.#s.slice(start, this.#i);
    if (unit !== '' && !annotatable(unit)) return false;
    if (this.#s[this.#i] === '{') return this.#annotation();
    return unit !== '';
  }

  /** `annotation := "{" (ASCII 33–126 but braces)* "}"` */
  #annotation(): boolean {
    this.#i++;
    while (this.#i < this.#s.length && this.#s[this.#i] !== '}') {
      const c = this.#s.charCodeAt(this.#i);
      if (c < 32 || c > 126 || c === 123) return false;
      this.#i++;
    }
    if (this.#s[this.#i] !== '}') return false;
    this.#i++;
    return true;
  }
}

function isDigits(s: string): boolean {
  if (s === '') return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 48 || s.charCodeAt(i) > 57) return false;
  return true;
}

/** `annotatable := simple-unit exponent?`, or a bare `factor` (digits). */
function annotatable(text: string): boolean {
  if (isDigits(text)) return true;
  let end = text.length;
  while (end > 0 && isDigits(text.charAt(end - 1))) end--;
  if (end < text.length && end > 0 && (text[end - 1] === '-' || text[end - 1] === '+')) end--;
  // An atom ending in digits inside its brackets keeps them; `10*3` is `10*` to the 3rd.
  return simpleUnit(text.slice(0, end)) || (end < text.length && simpleUnit(text));
}

/** `simple-unit := atom | prefix metric-atom` */
function simpleUnit(text: string): boolean {
  if (text === '') return false;
  if (ucumAtoms.has(text)) return true;
  return ucumPrefixes.some((p) => text.startsWith(p) && ucumAtoms.get(text.slice(p.length)) === true);
}

/**
 * Valid units {@link isUcum} has seen, so that each is parsed once: at most 512, and none with an
 * annotation or a long run of digits (`{…}` is free text and a bare number a valid factor: a device
 * could fill either with an identifier, which is kept in memory no longer than its reading).
 */
const maxKnown = 512;
const knownUcum = new Set<string>();

/**
 * Whether `unit` is a valid UCUM expression (case-sensitive form): atoms and prefixes from the UCUM
 * essence, exponents, `.` and `/`, parentheses, `{annotations}` and integer factors. Linear in the
 * unit's length; at most 64 characters are accepted.
 */
export function isUcum(unit: string): boolean {
  if (unit === '' || unit.length > MAX_UNIT) return false;
  // A device sends the same few units in every reading.
  if (knownUcum.has(unit)) return true;
  const valid = new UcumReader(unit).valid();
  if (valid && knownUcum.size < maxKnown && !unit.includes('{') && !/\d{5}/.test(unit)) knownUcum.add(unit);
  return valid;
}

/**
 * Common non-UCUM spellings and the UCUM to write instead, for the config check's suggestion (the
 * normalizer's run-time table maps more device spellings).
 */
const suggestions: Record<string, string> = {
  percent: '%',
  pct: '%',
  bpm: '/min',
  'beats/min': '/min',
  'breaths/min': '/min',
  rpm: '/min',
  mmHg: 'mm[Hg]',
  'mm Hg': 'mm[Hg]',
  cmH2O: 'cm[H2O]',
  degC: 'Cel',
  '°C': 'Cel',
  C: 'Cel',
  degF: '[degF]',
  '°F': '[degF]',
  sec: 's',
  secs: 's',
  'g/dl': 'g/dL',
  'mg/dl': 'mg/dL',
  'mmol/l': 'mmol/L',
  'K/uL': '10*3/uL',
  'IU/L': '[IU]/L',
  'mEq/L': 'meq/L',
};

/** The config problem with a unit, or undefined when it is UCUM. */
export function ucumProblem(unit: string): string | undefined {
  if (isUcum(unit)) return undefined;
  const better = Object.hasOwn(suggestions, unit) ? suggestions[unit] : undefined;
  return better === undefined
    ? `"${unit}" is not a UCUM unit (units are case-sensitive UCUM, e.g. "%", "/min", "mm[Hg]", "Cel")`
    : `"${unit}" is not a UCUM unit: write "${better}"`;
}
