// How long every regular expression literal in the packages that read device input takes on
// 100,000-character adversarial inputs (long runs of one class, then a mismatch): a linear pattern
// takes a few ms for all of them, a super-linear one seconds for one. test/regex-linear.test.ts
// checks the same literals structurally (recheck); this prints the times. Nothing is asserted.
// REGEX_CHARS sets the input length (default 100,000); a pattern stops at 3 s.
import { performance } from 'node:perf_hooks';
import { deviceRegexLiterals } from './regex-literals.mjs';

const chars = Number(process.env.REGEX_CHARS ?? 100_000);

function adversarial(n) {
  const runs = [
    '1',
    'a',
    'A',
    ' ',
    '\t',
    '-',
    '.',
    '0.',
    '\\',
    '|',
    '^',
    '&',
    '\r',
    '\n',
    '\r\n',
    'X0',
    'ab',
    '1a',
    '%',
    ':',
  ];
  return runs.flatMap((run) => {
    const body = run.repeat(Math.ceil(n / run.length)).slice(0, n);
    return [`${body}!`, `${body}\u0000`, `+${body}x`, `X${body}g`];
  });
}

const found = deviceRegexLiterals();
const inputs = adversarial(chars);
const times = [];
for (const { where, pattern, flags } of found) {
  const regex = new RegExp(pattern, flags.replace('g', ''));
  const started = performance.now();
  let done = 0;
  for (const input of inputs) {
    regex.exec(input);
    done++;
    if (performance.now() - started > 3000) break;
  }
  times.push({ where, pattern, ms: performance.now() - started, done });
}
times.sort((a, b) => b.ms - a.ms);
console.log(
  `${found.length} patterns, ${inputs.length} inputs of ${chars.toLocaleString('en')} characters each`,
);
for (const { where, pattern, ms, done } of times.slice(0, 10)) {
  console.log(`${ms.toFixed(1).padStart(8)} ms  ${done}/${inputs.length} inputs  ${where} /${pattern}/`);
}
