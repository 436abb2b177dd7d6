import t from 'tap';
import { devicePattern, devicePatternProblem } from '../src/index.js';

t.test('a config pattern is accepted when the linear-time engine can run it', async (t) => {
  for (const pattern of [
    '^SpO2=(?<spo2>\\d+|-+)\\s+PR=(?<pr>\\d+|-+)$',
    '^(?<x>.*),(?<y>.*),(?<z>.*)$',
    '^(?<a>\\w+)\\s*=\\s*(?<v>[-\\d.]+)\\s*(?<u>\\S*)$',
    '(a+)+x',
    '(a|ab)*c',
    'a*a*x',
    '^=== SERVICE LOG',
    '\\bHR\\b',
    'x{1,16}',
  ]) {
    t.equal(devicePatternProblem(pattern), undefined, pattern);
  }
});

t.test('a config pattern that needs backtracking or does not compile is refused, saying why', async (t) => {
  for (const pattern of ['(?=a)b', '(?!a)b', '(?<=a)b', '(?<!a)b', '(\\w)\\1', '(?<w>a)\\k<w>', 'a{2,500}']) {
    t.match(devicePatternProblem(pattern), /^cannot be matched in linear time: /, pattern);
  }
  t.match(devicePatternProblem('(a'), /^not a valid regular expression: Invalid regular expression/);
});

t.test('a hostile line cannot make a config pattern backtrack for long', async (t) => {
  // Without the linear-time fallback the first takes 2^4000 steps and the second minutes on a
  // 16 KiB line: the test would time out instead of ending.
  const exponential = devicePattern('^(?<a>(a|a)*)$');
  t.equal(exponential.exec(`${'a'.repeat(4000)}!`), null);
  const cubic = devicePattern('^(?<x>.*),(?<y>.*),(?<z>.*)y$');
  t.equal(cubic.exec(`${'a,'.repeat(8000)}x`), null);
  // The same patterns still match and capture as before on a normal line.
  t.same({ ...cubic.exec('1,2,3y')?.groups }, { x: '1', y: '2', z: '3' });
  t.same({ ...exponential.exec('aaa')?.groups }, { a: 'aaa' });
});
