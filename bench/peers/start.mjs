// Command start: the wall time of `attache status`, `attache modbus read` and `attache config
// validate` as whole processes, as the box runs them: the shipped release (scripts/bundle.mjs,
// built here into a temporary directory) started by its path (its shebang, as /usr/local/bin/attache
// is), taking turns with a bare `node -e 0` and `mbpoll` reading the same register from the same
// pymodbus server. `status` is timed twice: asking a running gateway (the release's own `attache
// run`), and with no gateway running (it then reads the cache itself: a gateway of the release has
// run on that data directory once and stopped, so that it holds a cache and its key, as on a box).
// The same commands from the development tree (packages/*/dist, tsc's output) are timed in the same
// turns, as `dev tree: …`.
// The release gets its code cache as on the box (`attache --write-code-cache`, compiled-start.ts);
// each line says how the command started (`start`, from NODE_DEBUG=attache-start in a run before
// the timed ones). BENCH_BEFORE_RELEASE=DIR (a release tree, e.g. `node scripts/bundle.mjs DIR` in a
// checkout of an older commit) times that release's commands in the same turns, as `before: …`.
// Prints medians and ratios to bare Node as JSON lines, with the rounds and the load average.
// The timed processes run without NODE_EXTRA_CA_CERTS, as on the box: where it is set (a machine
// behind a TLS-inspecting proxy), every Node process, `node -e 0` included, first parses those
// certificates and the whole bundled root store (~35 ms on x86_64, 5x the instructions of a bare
// `node -e 0`), which halves every ratio. BENCH_KEEP_ENV=1 keeps it (`extraCaCerts` in each line).
// `node bench/peers/start.mjs [rounds]` (after `npm run build`)
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getFreePort, startModbusServer } from '@attache/devkit';

const run = promisify(execFile);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const devBin = here('../../packages/cli/dist/bin.js');
const rounds = Number(process.argv[2] ?? 15);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const env = { ...process.env };
if (!process.env.BENCH_KEEP_ENV) delete env.NODE_EXTRA_CA_CERTS;
const extraCaCerts = env.NODE_EXTRA_CA_CERTS !== undefined;

const dir = await mkdtemp(join(tmpdir(), 'attache-peer-start-'));
const server = await startModbusServer({
  transport: 'tcp',
  units: { 1: [{ table: 'hr', address: 0, type: 'uint16', value: 42 }] },
});
let gateway;
try {
  await run(process.execPath, [here('../../scripts/bundle.mjs'), join(dir, 'release')]);
  const bin = join(dir, 'release/packages/cli/dist/bin.js');
  await run(bin, ['--write-code-cache'], { env });
  const beforeBin = process.env.BENCH_BEFORE_RELEASE
    ? join(process.env.BENCH_BEFORE_RELEASE, 'packages/cli/dist/bin.js')
    : undefined;
  /** A config whose one device listens for HL7 on a free port (nothing to open, so it starts at once). */
  async function config(name) {
    const path = join(dir, `${name}.json`);
    const port = await getFreePort();
    await writeFile(
      path,
      JSON.stringify({
        version: 1,
        gateway: { id: `gw-${name}`, dataDir: join(dir, name) },
        devices: [
          {
            id: 'monitor',
            adapter: 'ethernet',
            endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
            format: { kind: 'hl7-mllp' },
          },
        ],
      }),
    );
    return path;
  }
  const running = await config('running');
  const stopped = await config('stopped');
  /** `attache run` of the release on `path`, once it has started. */
  const start = async (path) => {
    const child = spawn(bin, ['run', '--config', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
      let log = '';
      child.stdout.setEncoding('utf8').on('data', (chunk) => {
        log += chunk;
        if (log.includes('"msg":"gateway started"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}:\n${log}`)));
    });
    return child;
  };
  // The stopped gateway has run once, as on a box: its data directory holds a cache and its key.
  const once = await start(stopped);
  once.kill('SIGTERM');
  await new Promise((resolve) => once.once('exit', resolve));
  gateway = await start(running);

  const bus = `tcp://127.0.0.1:${server.port}`;
  const attache = (label, args) => [
    [label, [bin, args]],
    ...(beforeBin ? [[`before: ${label}`, [beforeBin, args]]] : []),
    [`dev tree: ${label}`, [devBin, args]],
  ];
  const commands = Object.fromEntries([
    ['node -e 0', [process.execPath, ['-e', '0']]],
    ...attache('attache status', ['status', '--config', running]),
    ...attache('attache config validate', ['config', 'validate', '--config', running]),
    ...attache('attache modbus read', ['modbus', 'read', '--bus', bus, '--ref', '40001']),
    ...attache('attache status (no gateway running)', ['status', '--config', stopped]),
    [
      'mbpoll (one read)',
      ['mbpoll', ['-m', 'tcp', '-p', String(server.port), '-0', '-1', '-r', '0', '-c', '1', '127.0.0.1']],
    ],
  ]);
  /** How each command starts: the release's from its bundle and code cache, or from the ES modules. */
  const starts = {};
  for (const [name, [file, args]] of Object.entries(commands)) {
    const { stderr } = await run(file, args, { env: { ...env, NODE_DEBUG: 'attache-start' } });
    starts[name] = /^ATTACHE-START \d+: (.*)$/m.exec(stderr)?.[1];
  }
  const times = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
  const loadAtStart = loadavg().map((l) => Number(l.toFixed(2)));
  for (let r = 0; r < rounds; r++) {
    for (const [name, [file, args]] of Object.entries(commands)) {
      const t0 = performance.now();
      await run(file, args, { env });
      times[name].push(performance.now() - t0);
    }
  }
  const bare = median(times['node -e 0']);
  const load = loadavg().map((l) => Number(l.toFixed(2)));
  for (const [name, list] of Object.entries(times)) {
    const ms = median(list);
    const ratioToBareNode = Number((ms / bare).toFixed(2));
    console.log(
      JSON.stringify({
        command: name,
        medianMs: Number(ms.toFixed(1)),
        ratioToBareNode,
        ...(starts[name] === undefined ? {} : { start: starts[name] }),
        rounds,
        loadAtStart,
        load,
        extraCaCerts,
      }),
    );
  }
} finally {
  if (gateway && gateway.exitCode === null) {
    gateway.kill('SIGTERM');
    await new Promise((resolve) => gateway.once('exit', resolve));
  }
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
