// A command whose work never settles once nothing is left to wait for must not look like a success:
// bin.js ends it with exit status 13 (as Node did for an unsettled top-level await when bin.js was an
// ES module) and says so on stderr. Every command's own I/O settles when it is cut (a closed control
// connection rejects ATTACHE_CANCELED, a lost owner part exits 1), so the test makes the way it last
// happened for real: a command module whose top-level await waits on a connection that then closes
// without the event it waits for. The real bin.js, CLI and yargs run; a module loader hook (Node's
// `module.register`) gives `commands/watch.js` that top-level await in place of its own code.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

/** A loader hook: `commands/watch.js` awaits, at its top, an event the connection to `socket` never emits. */
const hook = (socket: string) => `
export async function load(url, context, next) {
  if (!url.endsWith('/commands/watch.js')) return next(url, context);
  const source = \`import { connect } from 'node:net';
import { once } from 'node:events';
await once(connect(\${JSON.stringify(${JSON.stringify(socket)})}), 'never emitted');
export const watchCommands = [];\`;
  return { format: 'module', source, shortCircuit: true };
}
`;

t.test('a command left waiting on nothing exits 13 and says so', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-unsettled-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socket = join(dir, 'peer.sock');
  await writeFile(join(dir, 'hook.mjs'), hook(socket));
  await writeFile(
    join(dir, 'preload.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${dir}/hook.mjs`).href)});\n`,
  );
  const server = createServer();
  server.listen(socket);
  await once(server, 'listening');
  t.teardown(() => server.close());

  const child = spawn(process.execPath, ['--import', join(dir, 'preload.mjs'), bin, 'watch'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  // While the connection is open the command has something to wait for: it is still running.
  const peer = await Promise.race([
    (once(server, 'connection') as Promise<[Socket]>).then(([socket]) => socket),
    exited.then(() => undefined),
  ]);
  if (!peer) throw new Error(`the command ended before it connected: ${stderr}`);
  t.equal(child.exitCode, null, 'the command waits while its connection is open');
  peer.destroy();

  const [code, signal] = await exited;
  t.equal(signal, null, 'not killed by a signal');
  t.equal(code, 13, 'exit status 13, not a silent 0');
  t.equal(stdout, '', 'nothing on stdout: no answer was printed');
  t.match(stderr, /attache: the command stopped without finishing/, 'stderr says the command never finished');
});
