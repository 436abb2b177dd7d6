// The shipped release (scripts/bundle.mjs, what image-build/stage-app.sh installs) built into a
// temporary directory outside the repository, so nothing of the source tree can stand in for what
// it lacks, and run as a user runs it: `attache --version`, `config validate` on a good and a bad
// config, `modbus read` over TCP (which loads no serial port code) and over RTU on a serial line,
// `attache run` reading a serial device, `status` asking that gateway, and `sync`, whose
// window process the gateway forks from the bundle's window-worker.mjs and which uploads through
// the AWS CRT (a native module shipped beside the bundle) to mosquitto with mutual TLS.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePort, openPtyPair, startModbusServer } from '@attache/devkit';
import t from 'tap';
import { checkRelativeFiles, copyPackages, lazyBuiltinSource, lazyBuiltins } from '../scripts/bundle.mjs';
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

  // modbus-serial requires serialport at its top; in the bundle that require is lazy (scripts/bundle.mjs).
  const required = join(out, 'required.txt');
  const preload = join(out, 'required.cjs');
  await writeFile(
    preload,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(required)}, Object.keys(require.cache).join('\\n')));\n`,
  );
  const modbus = (...args: string[]) =>
    run(process.execPath, ['--require', preload, bin, 'modbus', 'read', ...args]);
  const register = [{ table: 'hr' as const, address: 0, type: 'uint16' as const, value: 42 }];
  const tcp = await startModbusServer({ transport: 'tcp', units: { 1: register } });
  t.teardown(() => tcp.stop());
  const overTcp = await modbus('--bus', `tcp://127.0.0.1:${tcp.port}`, '--ref', '40001');
  t.equal(overTcp.code, 0, overTcp.stderr);
  t.match(overTcp.stdout, /hr:0\tuint16 ABCD\t42\t/, 'a read over TCP');
  t.notMatch(await readFile(required, 'utf8'), /serialport/, 'loads no serial port code');
  const pty = await openPtyPair(join(out, 'pty'));
  t.teardown(() => pty.close());
  const rtu = await startModbusServer({
    transport: 'rtu',
    path: pty.devicePath,
    baudRate: 19200,
    units: { 1: register },
  });
  t.teardown(() => rtu.stop());
  const overRtu = await modbus(
    '--bus',
    pty.gatewayPath,
    '--baud',
    '19200',
    '--parity',
    'none',
    '--stop-bits',
    '2',
    '--ref',
    '40001',
  );
  t.equal(overRtu.code, 0, overRtu.stderr);
  t.match(overRtu.stdout, /hr:0\tuint16 ABCD\t42\t/, 'a read over RTU on a serial line');
  t.match(await readFile(required, 'utf8'), /@serialport\/bindings-cpp/, 'which loads the serial bindings');

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
  const records = recordsOf(await dashboard.waitFor(window.messages, 30_000));
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

t.test(
  'the release starts its commands from the bundle with a code cache, and as before without one',
  async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'attache-release-cache-'));
    t.teardown(() => rm(out, { recursive: true, force: true }));
    const release = join(out, 'release');
    const built = await run(process.execPath, [join(repo, 'scripts/bundle.mjs'), release]);
    t.equal(built.code, 0, built.stderr);
    const dist = join(release, 'packages/cli/dist');
    const bin = join(dist, 'bin.js');
    const config = join(out, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        gateway: { id: 'gw-cache', dataDir: join(out, 'data') },
        devices: [
          {
            id: 'monitor',
            adapter: 'ethernet',
            endpoint: { mode: 'listen', host: '127.0.0.1', port: await getFreePort(), allow: ['127.0.0.1'] },
            format: { kind: 'hl7-mllp' },
          },
        ],
      }),
    );
    const bad = join(out, 'bad.json');
    await writeFile(bad, JSON.stringify({ version: 1, gateway: { id: 'x y' }, devices: [] }));
    const tcp = await startModbusServer({
      transport: 'tcp',
      units: { 1: [{ table: 'hr', address: 0, type: 'uint16', value: 42 }] },
    });
    t.teardown(() => tcp.stop());
    const commands: Record<string, string[]> = {
      'config validate': ['config', 'validate', '--config', config],
      'config validate (invalid)': ['config', 'validate', '--config', bad],
      status: ['status', '--config', config],
      'modbus read': ['modbus', 'read', '--bus', `tcp://127.0.0.1:${tcp.port}`, '--ref', '40001'],
      version: ['--version'],
      'a mistake': ['no-such-command'],
      // Each profile's bundle holds one command group: its help is the ES modules' help.
      'config --help': ['config', '--help'],
      'status --help': ['status', '--help'],
      'modbus (no subcommand)': ['modbus'],
      'status (no gateway)': ['status', '--config', config, '--json'],
    };
    /** Each command's exit code and output, and how it started (NODE_DEBUG=attache-start, taken out of stderr). */
    const runAll = async () => {
      const results: Record<string, CommandResult & { start: string }> = {};
      for (const [name, args] of Object.entries(commands)) {
        const result = await new Promise<CommandResult>((resolve) => {
          execFile(
            bin,
            args,
            { env: { ...process.env, NODE_DEBUG: 'attache-start' } },
            (err, stdout, stderr) =>
              resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
          );
        });
        const start = /^ATTACHE-START \d+: (.*)$/m.exec(result.stderr)?.[1] ?? 'none';
        results[name] = { ...result, stderr: result.stderr.replace(/^ATTACHE-START \d+: .*\n/gm, ''), start };
      }
      return results;
    };
    const plain = await runAll();
    t.equal(plain['config validate']?.code, 0, plain['config validate']?.stderr);
    t.equal(plain['config validate (invalid)']?.code, 78);
    t.equal(plain['modbus read']?.code, 0, plain['modbus read']?.stderr);
    t.equal(plain['a mistake']?.code, 1);
    for (const [name, result] of Object.entries(plain))
      t.match(result.start, /^ES modules: /, `${name}: ES modules without a cache`);

    const bundles = (await readdir(dist)).filter((f) => /^cli(-\w+)?\.cjs$/.test(f)).sort();
    t.same(
      bundles,
      ['cli-config.cjs', 'cli-modbus.cjs', 'cli-status.cjs', 'cli.cjs'],
      'the whole CLI and each profile',
    );
    for (const bundle of bundles) {
      const cjs = await readFile(join(dist, bundle), 'latin1');
      t.match(cjs, /^'use strict';\n/, `${bundle} runs in strict mode, as the ES modules do`);
      t.notMatch(cjs, /[\u0080-\u00ff]/, `and is ASCII (it is read as latin1)`);
    }
    const written = await run(bin, ['--write-code-cache']);
    t.equal(written.code, 0, written.stderr);
    const caches = (await readdir(dist)).filter((f) => f.endsWith('.cache')).sort();
    t.same(caches, [
      'cli.cjs.config.cache',
      'cli.cjs.modbus.cache',
      'cli.cjs.other.cache',
      'cli.cjs.status.cache',
    ]);
    for (const cache of caches)
      t.equal((await stat(join(dist, cache))).mode & 0o777, 0o644, `${cache} is 0644`);

    const compiled = await runAll();
    for (const [name, result] of Object.entries(compiled)) {
      t.equal(result.start, 'bundle, code cache accepted', `${name}: from the bundle with its code cache`);
      const { start: _, ...seen } = result;
      const { start: __, ...before } = plain[name] as CommandResult & { start: string };
      t.same(seen, before, `${name}: the same exit code and output`);
    }

    // The built-in modules a command never calls are not loaded (scripts/bundle.mjs, lazyBuiltins).
    const loaded = join(out, 'builtins.txt');
    const preload = join(out, 'builtins.cjs');
    await writeFile(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(loaded)}, process.moduleLoadList.join('\\n')));\n`,
    );
    // As a technician's shell starts it: `env -i`, since the test runner adds its loaders to every
    // child's environment.
    const validated = await run('/usr/bin/env', [
      '-i',
      `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`,
      process.execPath,
      '--require',
      preload,
      bin,
      ...(commands['config validate'] ?? []),
    ]);
    t.equal(validated.code, 0, validated.stderr);
    const modules = (await readFile(loaded, 'utf8')).split('\n');
    for (const unused of ['crypto', 'child_process', 'dns/promises', 'assert', 'v8'])
      t.notOk(modules.includes(`NativeModule ${unused}`), `config validate does not load node:${unused}`);

    // Node upgraded (apt) under the release: its caches name the Node that made them.
    const cacheFile = join(dist, 'cli.cjs.config.cache');
    const made = await readFile(cacheFile);
    await writeFile(
      cacheFile,
      Buffer.from(made.toString('latin1').replace(/ node-[^ ]+ /, ' node-20.0.0 '), 'latin1'),
    );
    const upgraded = await runAll();
    t.match(
      upgraded['config validate']?.start,
      /made by another Node/,
      'a cache of another Node is not used',
    );
    t.same(
      upgraded['config validate']?.stdout,
      plain['config validate']?.stdout,
      'and the command runs as before',
    );
    t.equal(upgraded['config validate (invalid)']?.code, 78);
    // A damaged cache (right header) is refused by V8: the command is compiled from the bundle.
    const header = made.subarray(0, made.indexOf(10) + 1);
    await writeFile(cacheFile, Buffer.concat([header, Buffer.alloc(made.length - header.length, 0x5a)]));
    const damaged = await runAll();
    t.equal(damaged['config validate']?.start, 'bundle, code cache rejected', 'V8 refuses a damaged cache');
    t.same(
      damaged['config validate']?.stdout,
      plain['config validate']?.stdout,
      'and the command runs as before',
    );
    t.equal(damaged['config validate (invalid)']?.code, 78);
  },
);

t.test('a lazy built-in module: the same exports, loaded at the first read of one', async (t) => {
  for (const name of lazyBuiltins) {
    const exports: Record<string, unknown> = {};
    const required: string[] = [];
    const require = (id: string) => {
      required.push(id);
      return createRequire(import.meta.url)(id) as Record<string, unknown>;
    };
    new Function('exports', 'require', lazyBuiltinSource(name))(exports, require);
    const real = createRequire(import.meta.url)(`node:${name}`) as Record<string, unknown>;
    t.same(
      Object.keys(exports),
      Object.keys(real).filter((k) => k !== 'default'),
      `node:${name}: the same names`,
    );
    t.same(required, [], `node:${name}: not loaded until an export is read`);
    for (const key of Object.keys(exports)) t.equal(exports[key], real[key], `node:${name}.${key}`);
    t.same(required, [`node:${name}`], `node:${name}: then loaded once`);
  }
});

t.test('node:fs/promises readFile and stat by path, before the module is loaded', async (t) => {
  const exports: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  const required: string[] = [];
  const require = (id: string) => {
    required.push(id);
    return createRequire(import.meta.url)(id) as unknown;
  };
  new Function('exports', 'require', lazyBuiltinSource('fs/promises'))(exports, require);
  const real = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'attache-lazy-fs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.json');
  await writeFile(file, '{"version":1}');
  /** What a call gives: its value, or its error's message and properties. */
  const outcome = (call: Promise<unknown>) =>
    call.then(
      (value) => (value instanceof Buffer || typeof value === 'string' ? value.toString() : 'a value'),
      (err: NodeJS.ErrnoException) => ({ message: err.message, code: err.code, syscall: err.syscall }),
    );
  for (const path of [file, new URL(`file://${file}`), join(dir, 'missing.json'), dir])
    for (const options of [undefined, 'utf8' as const, { encoding: 'utf8' as const }])
      t.same(
        await outcome(exports.readFile?.(path, options) as Promise<unknown>),
        await outcome(real.readFile(path, options)),
        `readFile(${String(path)}, ${JSON.stringify(options)})`,
      );
  for (const path of [file, join(dir, 'missing.json')])
    t.same(
      await outcome(exports.stat?.(path) as Promise<unknown>),
      await outcome(real.stat(path)),
      `stat(${path})`,
    );
  t.notOk(required.includes('node:fs/promises'), 'node:fs/promises is not loaded for them');
  t.equal(typeof (await exports.open?.(file, 'r')), 'object', 'another export loads it');
  t.equal(exports.readFile, real.readFile, 'and from then on readFile is its own');
});

t.test('the release tree: what the bundle names beside itself must be shipped', async (t) => {
  const tree = await mkdtemp(join(tmpdir(), 'attache-bundle-check-'));
  t.teardown(() => rm(tree, { recursive: true, force: true }));
  const dist = join(tree, 'dist');
  await mkdir(dist);
  await writeFile(
    join(dist, 'chunk-A.js'),
    'const a = new URL("./worker.js", import.meta.url);\nconst b = new URL("../assets/", import.meta.url);\n',
  );
  await writeFile(join(dist, 'worker.js'), '');
  t.throws(
    () => checkRelativeFiles(dist),
    /chunk-A\.js: \.\.\/assets\//,
    'a missing directory fails the build',
  );
  await mkdir(join(tree, 'assets'));
  t.doesNotThrow(() => checkRelativeFiles(dist), 'and passes once it is there');
});

t.test('the release tree: the native modules and what they require, nested copies kept', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-bundle-modules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pkg = async (path: string, json: Record<string, unknown>) => {
    await mkdir(join(dir, 'node_modules', path), { recursive: true });
    await writeFile(join(dir, 'node_modules', path, 'package.json'), JSON.stringify(json));
  };
  await pkg('native', {
    name: 'native',
    dependencies: { helper: '1', shared: '2', '@types/node': '*' },
    optionalDependencies: { absent: '1' },
  });
  await pkg('native/node_modules/shared', { name: 'shared', version: '2' });
  await pkg('shared', { name: 'shared', version: '1' });
  await pkg('helper', { name: 'helper', dependencies: { shared: '1' } });
  await pkg('@types/node', { name: '@types/node' });
  await pkg('unrelated', { name: 'unrelated' });
  const dest = join(dir, 'out');
  t.equal(copyPackages(join(dir, 'node_modules'), ['native'], dest), 4);
  const copied = (await readdir(dest, { recursive: true })).filter((p) => p.endsWith('package.json')).sort();
  t.same(copied, [
    'helper/package.json',
    'native/node_modules/shared/package.json',
    'native/package.json',
    'shared/package.json',
  ]);
  await pkg('broken', { name: 'broken', dependencies: { missing: '1' } });
  t.throws(
    () => copyPackages(join(dir, 'node_modules'), ['broken'], dest),
    /missing, a dependency of broken/,
  );
});
