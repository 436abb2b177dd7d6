// Every complete config shown in the docs must pass `attache config validate`, and the project
// stands alone: no file refers to a file outside the repository.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

const run = promisify(execFile);

const root = fileURLToPath(new URL('..', import.meta.url));

function configBlocks(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? '')
    .filter((block) => block.includes('"version": 1'));
}

for (const file of ['README.md', 'docs/devices.md']) {
  t.test(`the configs in ${file} are valid`, async (t) => {
    const blocks = configBlocks(file);
    t.ok(blocks.length > 0, 'the file shows at least one config');
    for (const [i, block] of blocks.entries()) {
      const path = join(t.testdir(), `config-${i}.json`);
      writeFileSync(path, block);
      const { stdout } = await run(join(root, 'packages/cli/dist/bin.js'), [
        'config',
        'validate',
        // The docs name the files of a gateway, not of this machine.
        '--offline',
        '-c',
        path,
      ]);
      t.match(stdout, /is valid: gateway \S+, [1-9]\d* devices/, `block ${i + 1} is valid`);
    }
  });
}

/** Every file git tracks here that is text (binary fixtures and the lockfile left out). */
async function trackedText(): Promise<{ file: string; text: string }[]> {
  const { stdout } = await run('git', ['ls-files', '-z'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\0')
    .filter((file) => file !== '' && file !== 'package-lock.json' && existsSync(join(root, file)))
    .map((file) => ({ file, text: readFileSync(join(root, file), 'latin1') }))
    .filter(({ text }) => !text.includes('\0'));
}

// Built from parts so that this file does not name them itself.
const outside = [['', 'work', ''].join('/'), ['shared', 'reference'].join('/')];

t.test('no file refers to a file outside the repository', async (t) => {
  const files = await trackedText();
  t.ok(files.length > 100, 'the tracked files were read');
  const offenders = files.flatMap(({ file, text }) =>
    outside.filter((needle) => text.includes(needle)).map((needle) => `${file}: ${needle}`),
  );
  t.same(offenders, [], 'no path into the machine the project was built on');
});

t.test('every relative link in the docs points at a file in the repository', async (t) => {
  const broken: string[] = [];
  for (const { file, text } of (await trackedText()).filter((f) => f.file.endsWith('.md'))) {
    for (const [, target = ''] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(?:[a-z]+:|#)/i.test(target)) continue;
      const path = resolve(root, dirname(file), target.replace(/#.*$/, ''));
      const inside = !relative(root, path).startsWith('..');
      if (!inside || !existsSync(path))
        broken.push(`${file}: ${target}${inside ? '' : ' (outside the repository)'}`);
    }
  }
  t.same(broken, [], 'no link leaves the repository or points at nothing');
});

t.test('every Markdown file a file names by name is in the repository', async (t) => {
  const files = await trackedText();
  const names = new Set(files.map(({ file }) => file.split('/').pop()));
  const missing = files.flatMap(({ file, text }) =>
    [...text.matchAll(/(?<![\w/.-])([\w-]+\.md)\b/g)]
      .map((m) => m[1] ?? '')
      .filter((name) => !names.has(name))
      .map((name) => `${file}: ${name}`),
  );
  t.same(
    [...new Set(missing)],
    [],
    'notes outside the repository are not cited: what they say is carried in',
  );
});
