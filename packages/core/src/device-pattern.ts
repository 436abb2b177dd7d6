import { setFlagsFromString } from 'node:v8';

/**
 * Backtracks one match may make before V8 runs it again on its linear-time engine. A pattern that is
 * linear on its input stays far below this on a 4 KiB line; a hostile line that would make `.*,.*,.*`
 * backtrack for seconds costs about 3 ms instead.
 */
export const backtracksBeforeLinear = 10_000;

let linearEngine = false;

/**
 * Turns on, for the whole process and once, V8's linear-time (breadth-first) regexp engine: as a
 * fallback for any match that backtracks more than {@link backtracksBeforeLinear} times, and as the
 * `l` flag that says whether a pattern can run on it. Every regexp compiled or run after this call
 * is covered, the product's own as well as a config's.
 */
export function useLinearRegExpFallback(): void {
  if (linearEngine) return;
  setFlagsFromString('--enable-experimental-regexp-engine');
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
  setFlagsFromString(`--regexp-backtracks-before-fallback=${backtracksBeforeLinear}`);
  linearEngine = true;
}

/**
 * Why a pattern from a config cannot be run on device input, or undefined: it must compile, and V8's
 * linear-time engine must be able to run it, so that no line, however hostile, makes a match take
 * more than linear time. That engine refuses look-arounds (`(?=`, `(?!`, `(?<=`, `(?<!`),
 * back-references (`\1`, `\k<name>`), and counted repeats too large to unroll (`a{2,500}`).
 */
export function devicePatternProblem(source: string): string | undefined {
  try {
    new RegExp(source);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  useLinearRegExpFallback();
  try {
    new RegExp(source, 'l');
  } catch {
    return 'cannot be matched in linear time: write it without look-arounds ((?=, (?!, (?<=, (?<!), back-references (\\1, \\k<name>) and counted repeats over a few dozen (a{2,500}), or a hostile line could stall the gateway';
  }
  return undefined;
}

/**
 * Compiles a pattern from a config that will run on device input, with the linear-time fallback on
 * (see {@link useLinearRegExpFallback}). The pattern keeps the backtracking engine's speed on normal
 * lines. Throws SyntaxError when the pattern is not valid; a config passes
 * {@link devicePatternProblem} before any pattern of it is compiled.
 */
export function devicePattern(source: string): RegExp {
  useLinearRegExpFallback();
  return new RegExp(source);
}
