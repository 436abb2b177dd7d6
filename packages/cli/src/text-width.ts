// The display width of a string in a terminal, for yargs' help layout (yargs, cliui and wrap-ansi
// import the string-width package for it). The shipped bundle (scripts/bundle.mjs) puts this module
// in string-width's place: string-width builds an Intl.Segmenter and compiles its Unicode property
// regexes (RGI_Emoji among them) when it is imported, 20-40 ms at every start of every command,
// although yargs needs widths only to lay out the help. Here printable ASCII costs a regex test and
// anything else a per-code-point count; the result equals string-width's for text without emoji
// sequences or other multi-code-point clusters (test/text-width.test.ts compares the two).

import { eastAsianWidth } from 'get-east-asian-width';
import stripAnsi from 'strip-ansi';

/** Options as string-width takes them. */
export interface TextWidthOptions {
  /** Count East Asian Ambiguous characters as narrow (1). Default true. */
  ambiguousIsNarrow?: boolean;
  /** Count the characters of ANSI escape codes. Default false. */
  countAnsiEscapeCodes?: boolean;
}

const printableAscii = /^[\x20-\x7e]*$/;
/** Code points that take no column: controls, format characters, combining marks, default-ignorables. */
let zeroWidth: RegExp | undefined;

/** The number of terminal columns `text` takes. */
export default function textWidth(text: unknown, options: TextWidthOptions = {}): number {
  if (typeof text !== 'string' || text.length === 0) return 0;
  const visible = options.countAnsiEscapeCodes ? text : stripAnsi(text);
  if (printableAscii.test(visible)) return visible.length;
  zeroWidth ??= /^[\p{Cc}\p{Cf}\p{Mn}\p{Me}\p{Default_Ignorable_Code_Point}\p{Surrogate}]$/u;
  const ambiguousAsWide = options.ambiguousIsNarrow === false;
  let width = 0;
  for (const char of visible) {
    if (zeroWidth.test(char)) continue;
    width += eastAsianWidth(char.codePointAt(0) as number, { ambiguousAsWide });
  }
  return width;
}
