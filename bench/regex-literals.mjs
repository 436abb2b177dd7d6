// The regular expression literals of the packages that read device input, with where each is: what
// test/regex-linear.test.ts checks structurally and bench/regex-linear.mjs times.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

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

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function literals(file) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found = [];
  const visit = (node) => {
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

/** Every regular expression literal in the device-input packages' sources (generated code aside). */
export function deviceRegexLiterals() {
  return devicePackages.flatMap((name) => sources(join(root, 'packages', name, 'src')).flatMap(literals));
}
