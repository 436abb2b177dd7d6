// The Makefile's Node.js check: a node older than the project needs stops `make` with what to do.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('..', import.meta.url));

function make(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile('make', ['--no-print-directory', ...args], { cwd: root }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, output: stdout + stderr }),
    ),
  );
}

t.test('make node-check passes on this node and explains an old one', async (t) => {
  t.equal((await make(['node-check'])).code, 0, `node ${process.version} is new enough`);
  // The real node, against a minimum it cannot meet: what a Debian 12 user with nodejs 18 sees.
  const old = await make(['node-check', 'NODE_MIN=99']);
  t.not(old.code, 0, 'make stops');
  t.match(old.output, `Attaché needs Node.js >= 99; this machine has ${process.version}.`);
  t.match(old.output, 'Debian 12 (bookworm) ships nodejs 18: install Node.js 20 from NodeSource');
  t.match(old.output, 'https://deb.nodesource.com/setup_20.x');
});
