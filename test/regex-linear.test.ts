import { checkSync } from 'recheck';
import t from 'tap';
import { deviceRegexLiterals } from '../bench/regex-literals.mjs';

/**
 * Every regular expression literal in the packages that read device input is checked for
 * super-linear backtracking, structurally by recheck (which finds polynomial as well as exponential
 * ambiguity, e.g. the `\d+\.?\d*` that took 18 s on 100,000 digits). A pattern recheck cannot decide
 * fails the test too. `node bench/regex-linear.mjs` times the same literals on 100,000-character
 * adversarial inputs.
 */
const found = deviceRegexLiterals();

t.test('the regular expressions applied to device input are linear', async (t) => {
  t.ok(found.length >= 30, `${found.length} patterns collected`);
  for (const { where, pattern, flags } of found) {
    const result = checkSync(pattern, flags, { timeout: 20_000 });
    t.equal(
      result.status,
      'safe',
      `${where} /${pattern}/${flags}: ${result.status === 'vulnerable' ? `${result.complexity.type} (${result.attack.pattern})` : result.status}`,
    );
  }
});
