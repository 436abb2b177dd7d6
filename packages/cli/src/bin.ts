#!/usr/bin/env -S node --v8-pool-size=1
// One V8 helper thread is enough on a Pi. The service adds `--max-semi-space-size=4` (attache.service:
// a young generation capped at 4 MB, sized for the ingest path under load, bench/README.md) and
// `--no-sparkplug` (less idle memory); a short command needs neither.
import { startCompiled } from './compiled-start.js';

// The release starts a command from its CommonJS bundle with V8's code cache when it can
// (compiled-start.ts); otherwise (the development tree, the services `run` and `console`, no usable cache) from the
// ES modules. `attache --write-code-cache` makes the caches. No top-level await: the release's
// bin.js is a CommonJS script (scripts/bundle.mjs), which spares a short command the ES module
// loader. A command that fails ends as before: its error printed, exit status 1.

async function writeCaches(): Promise<void> {
  try {
    const written = await (await import('./code-cache-writer.js')).writeCodeCaches();
    for (const { file, bytes } of written) process.stdout.write(`${file}: ${bytes} bytes\n`);
    if (written.length === 0) process.stdout.write('the code cache is up to date\n');
  } catch (err) {
    console.error(`attache: no code cache written: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

const command =
  process.argv[2] === '--write-code-cache'
    ? writeCaches()
    : (startCompiled()?.done ?? import('./cli.js').then((cli) => cli.main()));
// A command whose work never settles once nothing is left to wait for failed: exit status 13, as
// an unsettled top-level await ended it when bin.js was an ES module.
let settled = false;
const mark = () => {
  settled = true;
};
command.then(mark, mark);
process.once('beforeExit', () => {
  if (settled) return;
  process.exitCode = 13;
  process.stderr.write(
    'attache: the command stopped without finishing: nothing was left to wait for (exit status 13)\n',
  );
});
