/** A regular expression literal and where it is (`packages/…/x.ts:line`). */
export interface RegexLiteral {
  where: string;
  pattern: string;
  flags: string;
}

/** Every regular expression literal in the device-input packages' sources (generated code aside). */
export function deviceRegexLiterals(): RegexLiteral[];
