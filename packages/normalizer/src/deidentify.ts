import { scanTokens, type Token } from './free-text-tokens.js';

/** What replaces each removed span of free text. */
export const REDACTED = '[redacted]';

/** Longest free text kept after de-identification (the record schema's limit). */
export const MAX_FREE_TEXT = 1024;

/** Titles that introduce a name whatever its case (`dr. smith`). Compared lower-case, without a dot. */
const titles = new Set([
  'dr',
  'doctor',
  'mr',
  'mrs',
  'ms',
  'miss',
  'mx',
  'prof',
  'professor',
  'nurse',
  'sister',
  'rn',
  'tech',
  'technician',
  'technologist',
  'physician',
  'resident',
  'attending',
  'operator',
]);

/** Words after which a capitalized word (or any word, in all-caps text) is taken for a name. */
const triggers = new Set([
  'by',
  'per',
  'called',
  'notified',
  'informed',
  'paged',
  'told',
  'spoke',
  'contacted',
  'phoned',
  'reported',
  'attn',
  'cc',
  'signed',
  'patient',
  'pt',
  'mother',
  'father',
  'wife',
  'husband',
  'son',
  'daughter',
  'family',
]);

/** Words skipped between a trigger or title and the name (`called to Dr Smith`). */
const fillers = new Set(['to', 'with', 'by', 'the', 'dr', 'doctor', 'nurse', 'mr', 'mrs', 'ms', 'rn', 'md']);

/** Credentials written after a name (`J Smith RN`), compared as sent (upper case, `PhD`). */
const credentials = new Set([
  'RN',
  'MD',
  'LPN',
  'NP',
  'CNA',
  'MT',
  'MLS',
  'MLT',
  'CLS',
  'RRT',
  'CRNA',
  'APRN',
  'PhD',
]);

/** Words never taken for a name after a trigger: clinical words, limit words, common function words. */
const notNames = new Set(
  (
    'a an and are as at be been for from in is it no not of on or so than that the this was were will ' +
    'am pm today tonight yesterday now again repeat repeated result results value values lab labs ' +
    'analyzer analyser instrument sample specimen smear ward unit icu er ed floor bed room phone tel ' +
    'high low limit limits alarm alert above below over under critical normal abnormal manual auto ' +
    'reviewed review verified confirmed dilution diluted delta check rerun re run read back readback'
  ).split(' '),
);

/** Words after which the next number or code is an identifier or a phone number, whatever its length. */
const idKeys = new Set([
  'mrn',
  'mr',
  'acct',
  'account',
  'accession',
  'acc',
  'id',
  'ssn',
  'dob',
  'phone',
  'tel',
  'ph',
  'cell',
  'mobile',
  'pager',
  'pgr',
  'beeper',
  'ext',
  'fax',
  'x',
]);

const months = new Set(
  (
    'jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june july ' +
    'august september october november december'
  ).split(' '),
);

const phoneSeparators = new Set(['-', '.', '(', ')', '+', ' ']);

function isCapitalized(word: string): boolean {
  const first = word.charAt(0);
  return first !== first.toLowerCase();
}

/**
 * Removes people and identifiers from free text a device sent (comments, notes, text values, alarm
 * texts), replacing each span with {@link REDACTED}. One pass over the text's tokens with a bounded
 * look-around: linear in the text's length, whatever the text. What it removes and what it cannot
 * are listed in the package README ("De-identification of free text").
 */
export class FreeTextDeidentifier {
  readonly #known = new Set<string>();

  /**
   * @param known Words and identifiers the message itself carries about people (names of the
   *   patient, relatives and clinicians; patient, visit and specimen ids): each of their words of two
   *   characters or more, and digit runs of four or more, is removed wherever it appears, in any case.
   */
  constructor(known: Iterable<string> = []) {
    for (const value of known) {
      for (const token of scanTokens(value)) {
        // Short numbers (a house number, a bed) are not identifying alone, and alarm texts need them.
        const least = token.kind === 'number' ? 4 : token.kind === 'word' ? 2 : Number.POSITIVE_INFINITY;
        for (const part of [token.text, ...(token.parts ?? [])])
          if (part.length >= least) this.#known.add(part.toLowerCase());
      }
    }
  }

  /** The text with names, identifiers, phone numbers, dates and e-mail addresses removed. */
  clean(text: string): string {
    const input = bounded(text);
    const tokens = scanTokens(input);
    const allCaps = input.toUpperCase() === input;
    const words = tokens.map((token, i) => ({ token, i })).filter(({ token }) => token.kind !== 'space');
    const sig = words.map(({ token }) => token);
    const mark = (j: number) => {
      const t = sig[j];
      if (t !== undefined) t.redact = true;
    };
    for (let j = 0; j < sig.length; j++) {
      const token = sig[j] as Token;
      const lower = token.text.toLowerCase();
      if (token.kind === 'email') mark(j);
      if (this.#known.has(lower) || token.parts?.some((p) => this.#known.has(p.toLowerCase()))) mark(j);
      if (token.kind === 'word') {
        if (digitCount(token.text) >= 5) mark(j);
        if (titles.has(lower)) markName(sig, j + 1, true, allCaps);
        else if (triggers.has(lower)) markName(sig, j + 1, false, allCaps);
        if (credentials.has(token.text)) markBefore(sig, j, allCaps);
        if (idKeys.has(lower)) markIdAfter(sig, j + 1);
        if (months.has(lower)) markMonth(sig, j);
      }
      if (token.kind === 'number' || ('+('.includes(token.text) && sig[j + 1]?.kind === 'number')) {
        j = markNumbers(tokens, sig, words, j);
      }
    }
    return render(tokens).slice(0, MAX_FREE_TEXT);
  }
}

/**
 * At most four times the kept length, cut at white space: the output is cut to MAX_FREE_TEXT anyway,
 * and a cut inside a word or number could leave part of an identifier looking harmless.
 */
function bounded(text: string): string {
  const limit = 4 * MAX_FREE_TEXT;
  if (text.length <= limit) return text;
  let cut = limit;
  while (cut > 0 && !/\s/.test(text.charAt(cut))) cut--;
  return text.slice(0, cut);
}

function digitCount(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

/** Skips fillers from `j`, then marks up to three name-like words. */
function markName(sig: Token[], start: number, strong: boolean, allCaps: boolean): void {
  let j = start;
  for (let skipped = 0; skipped < 3; skipped++) {
    const t = sig[j];
    if (t === undefined) return;
    const isFiller = t.kind === 'punct' ? ':,.(-'.includes(t.text) : fillers.has(t.text.toLowerCase());
    if (!isFiller) break;
    j++;
  }
  let taken = 0;
  while (taken < 3) {
    const t = sig[j];
    // After a title the first word is a name in any case (`dr smith`); the next ones must look like names.
    if (t === undefined || !isNameLike(t, allCaps || (strong && taken === 0))) return;
    t.redact = true;
    taken++;
    j++;
    // An initial: `J. Smith`.
    if (t.text.length === 1 && sig[j]?.text === '.') mark(sig[j++]);
    // `Smith, John`: a comma between two name-like words.
    const after = sig[j + 1];
    if (sig[j]?.text === ',' && taken < 3 && after !== undefined && isNameLike(after, allCaps))
      mark(sig[j++]);
  }
}

function mark(t: Token | undefined): void {
  if (t !== undefined) t.redact = true;
}

function isNameLike(t: Token, anyCase: boolean): boolean {
  if (t.kind !== 'word' || digitCount(t.text) > 0) return false;
  const lower = t.text.toLowerCase();
  if (notNames.has(lower) || idKeys.has(lower) || titles.has(lower) || credentials.has(t.text)) return false;
  return anyCase || isCapitalized(t.text);
}

/** `J Smith RN`, `Smith, J MD`: up to two name-like words before a credential. */
function markBefore(sig: Token[], j: number, allCaps: boolean): void {
  let k = j - 1;
  if (sig[k]?.text === ',') k--;
  for (let taken = 0; taken < 2 && k >= 0; taken++) {
    const t = sig[k] as Token;
    if (t.text === '.' || t.text === ',') {
      k--;
      taken--;
      if (k < j - 5) return;
      continue;
    }
    if (!isNameLike(t, allCaps)) return;
    t.redact = true;
    k--;
  }
}

/** `MRN 12345`, `ext 4521`, `ID: A77`: the next number or code with digits (after a `#`, `:` or `.`). */
function markIdAfter(sig: Token[], j: number): void {
  let k = j;
  while (sig[k]?.kind === 'punct' && '#:.'.includes(sig[k]?.text ?? '') && k < j + 2) k++;
  const t = sig[k];
  if (t !== undefined && (t.kind === 'number' || (t.kind === 'word' && digitCount(t.text) > 0))) {
    t.redact = true;
  }
}

/** `12 Mar 2024`, `March 3`: a month name and the numbers beside it. */
function markMonth(sig: Token[], j: number): void {
  const [before, after, next, third] = [sig[j - 1], sig[j + 1], sig[j + 2], sig[j + 3]];
  const near = [before, after, next?.text === ',' ? third : next].filter(
    (t): t is Token => t?.kind === 'number' && t.text.length <= 4,
  );
  if (near.length === 0) return;
  (sig[j] as Token).redact = true;
  for (const t of near) t.redact = true;
  if (next?.text === ',' && third?.redact === true && after?.redact === true) next.redact = true;
}

/**
 * A run of digit groups joined by phone or date separators, starting at `sig[j]`: a date, a phone
 * number or a long identifier is marked; decimals, ratios (`120/80`) and short numbers stay.
 * Returns the index of the run's last significant token.
 */
function markNumbers(tokens: Token[], sig: Token[], words: { i: number }[], j: number): number {
  const start = words[j]?.i ?? 0;
  const groups: string[] = [];
  const seps: string[] = [];
  let i = start;
  while (tokens[i]?.text === '+' || tokens[i]?.text === '(') i++;
  while (tokens[i]?.kind === 'number') {
    groups.push((tokens[i] as Token).text);
    // Up to two separator characters (`-`, `) `, ` (`) and then another digit group.
    let k = i + 1;
    let sep = '';
    while (k < i + 3 && isSeparator(tokens[k])) sep += (tokens[k++] as Token).text;
    if (sep === '' || tokens[k]?.kind !== 'number') break;
    seps.push(sep.includes(' ') ? ' ' : sep);
    i = k;
  }
  if (shouldRedact(groups, seps)) for (let k = start; k <= i; k++) (tokens[k] as Token).redact = true;
  // Continue after the run's last significant token.
  let last = j;
  while (last + 1 < sig.length && (words[last + 1]?.i ?? Number.POSITIVE_INFINITY) <= i) last++;
  return last;
}

function isSeparator(t: Token | undefined): boolean {
  if (t === undefined) return false;
  return t.kind === 'space' ? t.text === ' ' : phoneSeparators.has(t.text) || t.text === '/';
}

function shouldRedact(groups: string[], seps: string[]): boolean {
  const digits = groups.reduce((n, g) => n + g.length, 0);
  const only = (set: string) => seps.every((s) => [...s].every((c) => set.includes(c)));
  if (groups.length === 1) return digits >= 6;
  if (groups.length === 3 && seps[0] === seps[1] && only('/.-') && isDateShape(groups)) return true;
  if (groups.length === 2 && seps[0] === '/' && groups.every((g) => g.length === 2)) return true;
  if (groups.length === 2 && (seps[0] === '.' || seps[0] === '/')) return false;
  if (!only('-. ()+')) return false;
  if (seps.includes(' ') && !only(' ()+-')) return false;
  if (seps.includes(' ')) return digits >= 7 && (groups.at(-1)?.length ?? 0) >= 4;
  return digits >= 7;
}

function isDateShape(groups: string[]): boolean {
  const [a = '', b = '', c = ''] = groups;
  const small = (g: string) => g.length >= 1 && g.length <= 2;
  return (
    (small(a) && small(b) && (c.length === 2 || c.length === 4)) || (a.length === 4 && small(b) && small(c))
  );
}

/** The tokens back to text; a run of removed tokens (and the spaces between them) becomes one marker. */
function render(tokens: Token[]): string {
  let out = '';
  let pending = '';
  let afterMarker = false;
  for (const t of tokens) {
    if (t.kind === 'space') {
      pending += t.text;
      continue;
    }
    if (t.redact) {
      if (!afterMarker) out += pending + REDACTED;
      afterMarker = true;
    } else {
      out += pending + t.text;
      afterMarker = false;
    }
    pending = '';
  }
  return out + pending;
}
