// The release drops the help text yargs lays out after starting a handler, to print should the
// handler's promise reject (scripts/bundle.mjs, yargsNoHelpCache): that holds only while no handler
// rejects. Every handler of the CLI is `() => undefined` (a group that needs a subcommand) or ends
// in `.catch(fail)` (fail prints the error and exits): one of those per handler of each command
// module, `handler:` properties and `.command(name, describe, builder, handler)` calls alike.

import { readdir, readFile } from 'node:fs/promises';
import t from 'tap';

const dir = new URL('../src/commands/', import.meta.url);

t.test('no command handler can reject', async (t) => {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'));
  t.ok(files.length >= 10, 'the command modules are there');
  for (const file of files) {
    const code = await readFile(new URL(file, dir), 'utf8');
    const count = (pattern: RegExp) => code.match(pattern)?.length ?? 0;
    const handlers = count(/^\s*handler:/gm) + count(/\.command\(/g);
    const settled = count(/\.catch\(fail\)/g) + count(/handler: \(\) => undefined/g);
    t.ok(settled >= handlers, `${file}: ${handlers} handlers, ${settled} that cannot reject`);
  }
});
