// The main entry must run in a browser: nothing it loads may import a Node built-in or a package.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

t.test('@attache/consumer (main entry) imports no Node built-in and no package', async (t) => {
  const seen = new Set<string>();
  const foreign: string[] = [];
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const [, spec] of text.matchAll(/(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\s+'([^']+)'/g)) {
      if (spec === undefined) continue;
      if (spec.startsWith('.')) await visit(join(dirname(file), spec.replace(/\.js$/, '.ts')));
      else foreign.push(`${file.slice(src.length + 1)}: ${spec}`);
    }
  };
  await visit(join(src, 'index.ts'));
  t.ok(seen.size > 5, `walked ${seen.size} modules`);
  t.ok(seen.has(join(src, 'generated', 'validators.ts')), 'the validators are among them');
  t.same(foreign, []);
});
