// Every complete config shown in the docs must pass `attache config validate`.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
