/**
 * A decimal as devices send it: optional sign, digits with an optional fraction (`12`, `-0.5`,
 * `7.`, `.25`); no exponent, no spaces. Written so that no run of digits can be matched in two ways:
 * `^[+-]?(\d+\.?\d*|\.\d+)$` (the optional dot between two digit runs) backtracks quadratically on
 * a long run of digits followed by a letter, 18 s for 100 000 digits.
 */
const decimal = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * The number a decimal text spells, or undefined when the text is not a decimal (see above) or its
 * value does not fit a double (more than about 1.8e308, which would become Infinity). Linear in the
 * length of `text`, whatever it holds.
 */
export function parseDecimal(text: string): number | undefined {
  if (!decimal.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}
