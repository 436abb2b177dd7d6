// The shipped release (scripts/bundle.mjs, what image-build/stage-app.sh installs) built into a
// temporary directory outside the repository, so nothing of the source tree can stand in for what
// it lacks, and run as a user runs it: `attache --version`, `config validate` on a good and a bad
// config, `attache run` reading a serial device, `status` asking that gateway, and `sync`, whose
// window process the gateway forks from the bundle's window-worker.js and which uploads through
// the AWS CRT (a native module shipped beside the bundle) to mosquitto with mutual TLS.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { type CommandResult, recordsOf, Stack, type StatusJson } from './helpers/stack.js';

const repo = fileURLToPath(new URL('..', import.meta.url));

function run(file: string, args: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

t.test('the bundled release runs the commands, the gateway and its window process', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'attache-release-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const release = join(out, 'release');
  const built = await run(process.execPath, [join(repo, 'scripts/bundle.mjs'), release]);
  t.equal(built.code, 0, built.stderr);
  const bin = join(release, 'packages/cli/dist/bin.js');
  const attache = (...args: string[]) => run(bin, args);
  t.same(
    (await readdir(join(release, 'node_modules'))).filter((n) => ['yargs', 'pino', 'ajv'].includes(n)),
    [],
    'bundled packages are not shipped again',
  );

  const version = await attache('--version');
  t.equal(version.stdout.trim(), '0.1.0', 'the release version, from the release');

  const stack = await Stack.start(t);
  const valid = await attache('config', 'validate', '--config', stack.configPath);
  t.equal(valid.code, 0, valid.stderr);
  t.match(valid.stdout, /is valid: gateway gw-e2e-1, 1 devices/);
  const bad = join(stack.dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ version: 1, gateway: { id: 'x y' }, devices: [] }));
  const invalid = await attache('config', 'validate', '--config', bad);
  t.equal(invalid.code, 78, 'an invalid config exits 78');
  t.match(invalid.stderr, /\/gateway\/id: /, 'each problem named by its path');

  const gateway = spawn(bin, ['run', '--config', stack.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => gateway.once('exit', resolve));
  t.teardown(async () => {
    if (gateway.exitCode === null) gateway.kill('SIGTERM');
    await exited;
  });
  let log = '';
  gateway.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
  });
  gateway.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    log += chunk;
  });
  for (const deadline = Date.now() + 30_000; !log.includes('"msg":"gateway started"'); ) {
    if (Date.now() > deadline || gateway.exitCode !== null)
      throw new Error(`the gateway did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 0; i < 3; i++) await stack.device.sendReading();
  let status: StatusJson | undefined;
  for (const deadline = Date.now() + 30_000; status?.backlog.records !== 3; ) {
    if (Date.now() > deadline) throw new Error(`status never showed 3 records: ${JSON.stringify(status)}`);
    const asked = await attache('status', '--json', '--config', stack.configPath);
    t.equal(asked.code, 0, asked.stderr);
    status = JSON.parse(asked.stdout) as StatusJson;
  }
  t.equal(status?.running, true, 'status asked the running gateway');
  t.equal(status?.adapters[0]?.state, 'connected');

  const dashboard = await stack.subscribe();
  const sync = await attache('sync', '--json', '--config', stack.configPath);
  t.equal(sync.code, 0, `${sync.stderr}\n${log}`);
  const window = JSON.parse(sync.stdout) as { outcome: string; records: number; messages: number };
  t.match(window, { outcome: 'drained', records: 3 }, 'the window process drained the backlog');
  const records = recordsOf(await dashboard.waitFor(window.messages, 15_000));
  t.equal(records.length, 3, 'and the broker got the three readings');
  t.match(log, /window-worker|"msg":"window/, 'the window ran in the gateway');

  // On a terminal the log is pretty-printed by pino-pretty in pino's worker thread, which the bundle
  // starts from its own files (packages/cli/dist/*.cjs).
  gateway.kill('SIGTERM');
  await exited;
  const terminal = spawn('script', ['-qfec', `${bin} run --config ${stack.configPath}`, '/dev/null'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ended = new Promise((resolve) => terminal.once('exit', resolve));
  t.teardown(async () => {
    if (terminal.exitCode === null) terminal.kill('SIGTERM');
    await ended;
  });
  let screen = '';
  terminal.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    screen += chunk;
  });
  for (const deadline = Date.now() + 30_000; !/INFO.*\(\d+\): .*gateway started/.test(screen); ) {
    if (Date.now() > deadline || terminal.exitCode !== null)
      throw new Error(`no pretty log line:\n${screen}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.notMatch(screen, /"msg":/, 'pretty lines on the terminal, not JSON');
});
