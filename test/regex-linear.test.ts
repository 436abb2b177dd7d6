import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSync } from 'recheck';
import t from 'tap';
import ts from 'typescript';

/**
 * Every regular expression literal in the packages that read device input is checked for
 * super-linear backtracking, structurally by recheck (which finds polynomial as well as exponential
 * ambiguity, e.g. the `\d+\.?\d*` that took 18 s on 100,000 digits). A pattern recheck cannot decide
 * fails the test too. `node bench/regex-linear.mjs` times the same literals on 100,000-character
 * adversarial inputs.
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
