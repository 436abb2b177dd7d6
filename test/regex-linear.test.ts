import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { checkSync } from 'recheck';
import t from 'tap';
import ts from 'typescript';

/**
 * Every regular expression literal in the packages that read device input is checked for
 * super-linear backtracking: structurally by recheck (which finds polynomial as well as exponential
 * ambiguity, e.g. the `\d+\.?\d*` that took 18 s on 100,000 digits), then by running it on 100,000
 * character adversarial inputs. A pattern recheck cannot decide fails the test too.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const devicePackages = [
  'adapter-ethernet',
  'adapter-rs232',
  'adapter-modbus',
  'astm',
  'hl7',
  'line-formats',
  'normalizer',
  'core',
];

interface Found {
  where: string;
  pattern: string;
  flags: string;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function literals(file: string): Found[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: Found[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isRegularExpressionLiteral(node)) {
      const text = node.getText(source);
      const end = text.lastIndexOf('/');
      const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
      found.push({
        where: `${file.slice(root.length)}:${line + 1}`,
        pattern: text.slice(1, end),
        flags: text.slice(end + 1),
      });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const found = devicePackages.flatMap((name) =>
  sources(join(root, 'packages', name, 'src')).flatMap(literals),
);

/** Inputs that make a backtracking pattern work hard: long runs of one class, then a mismatch. */
function adversarial(n: number): string[] {
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

t.test('no pattern takes long on 100,000-character adversarial inputs', async (t) => {
  const inputs = adversarial(100_000);
  for (const { where, pattern, flags } of found) {
    const regex = new RegExp(pattern, flags.replace('g', ''));
    const started = performance.now();
    // Stop at the bound: a quadratic pattern takes about a second per input.
    for (const input of inputs) {
      regex.exec(input);
      if (performance.now() - started > 3000) break;
    }
    const ms = performance.now() - started;
    // Linear patterns take a few ms for all 80 inputs; a quadratic one takes seconds for one.
    t.ok(ms < 3000, `${where} /${pattern}/: ${ms.toFixed(0)} ms for ${inputs.length} inputs`);
  }
});
