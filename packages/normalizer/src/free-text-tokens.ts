/** One token of free text. */
export interface Token {
  /** `word`: letters and digits (with `'` or `-` between letters); `email`: a chunk with `@` in it. */
  kind: 'word' | 'number' | 'space' | 'punct' | 'email';
  text: string;
  /** The pieces of a word joined by `'` or `-` (`Smith-Jones`), when there are several. */
  parts?: string[];
  /** Set by the de-identifier: the token is removed. */
  redact?: boolean;
}

const letter = /\p{L}/u;

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isLetter(c: string): boolean {
  if (c < '\u0080') return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return letter.test(c);
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\f' || c === '\v' || c === '\u00a0';
}

/** Joiners kept inside a word when a letter stands on both sides (`O'Brien`, `Smith-Jones`). */
const joiners = new Set(["'", '-', '\u2019']);

/**
 * Splits free text into tokens in one pass (each character is looked at a bounded number of times):
 * runs of white space, words, digit runs, single punctuation characters, and whole chunks between
 * white space that contain `@` (e-mail addresses). Joining the tokens' texts gives the text back.
 */
export function scanTokens(text: string): Token[] {
  // UTF-16 units: a letter outside the BMP counts as punctuation (rare in names; still one token).
  const chars = text;
  const tokens: Token[] = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i] as string;
    if (isSpace(c)) {
      let j = i + 1;
      while (j < chars.length && isSpace(chars[j] as string)) j++;
      tokens.push({ kind: 'space', text: chars.slice(i, j) });
      i = j;
      continue;
    }
    // At the start of a chunk: an e-mail address takes the whole chunk.
    if (i === 0 || isSpace(chars[i - 1] as string)) {
      let j = i;
      let at = false;
      while (j < chars.length && !isSpace(chars[j] as string)) {
        if (chars[j] === '@') at = true;
        j++;
      }
      if (at) {
        tokens.push({ kind: 'email', text: chars.slice(i, j) });
        i = j;
        continue;
      }
    }
    if (isDigit(c) || isLetter(c)) {
      i = scanWord(chars, i, tokens);
      continue;
    }
    tokens.push({ kind: 'punct', text: c });
    i++;
  }
  return tokens;
}

function scanWord(chars: string, start: number, tokens: Token[]): number {
  const parts: string[] = [];
  let partStart = start;
  let j = start;
  let letters = false;
  for (;;) {
    while (j < chars.length && (isDigit(chars[j] as string) || isLetter(chars[j] as string))) {
      if (isLetter(chars[j] as string)) letters = true;
      j++;
    }
    parts.push(chars.slice(partStart, j));
    const joiner = chars[j];
    const after = chars[j + 1];
    const before = chars[j - 1] as string;
    if (joiner === undefined || after === undefined || !joiners.has(joiner)) break;
    if (!isLetter(before) || !isLetter(after)) break;
    j++;
    partStart = j;
  }
  const text = chars.slice(start, j);
  const token: Token = { kind: letters ? 'word' : 'number', text };
  if (parts.length > 1) token.parts = parts;
  tokens.push(token);
  return j;
}
