// Idle memory of `attache run` (the installed unit's node flags, one simulated oximeter on a socat pty
// at a line a second), taking turns with a bare Node process and, when NODE_RED_DIR names a directory
// where `npm install node-red@4` ran, Node-RED 4 with empty flows. Each figure: the median over the
// rounds of the median of five samples a second apart after 15 s (BENCH_SETTLE_S), from
// /proc/PID/smaps_rollup: RSS, anonymous (the process's own: V8 heap, malloc) and file-backed (the
// node binary's and the native addons' pages, shared with every Node process). Nothing is asserted.
// By default `attache` runs from the shipped release (the esbuild bundle scripts/bundle.mjs builds,
// here into a temporary directory: what the image installs). BENCH_BIN names another bin.js to run
// instead (`packages/cli/dist/bin.js` for the development tree), BENCH_BEFORE_BIN a second one that
// takes its turn before it in each round (an A/B), with BENCH_BEFORE_FLAGS (its unit's node flags,
// space-separated) when they differ from this tree's unit's. Every process runs without NODE_EXTRA_CA_CERTS,
// as on the box (where set, each Node process holds the parsed root store and those certificates).
//   node bench/idle-rss.mjs [rounds]     (default 3; NODE_RED_DIR=/path, BENCH_SETTLE_S=15 optional)
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getFreePort, LineDeviceSimulator, openPtyPair, profileFormat } from '@attache/devkit';
import { boxEnv, unitStart } from './unit-start.mjs';

const before = process.env.BENCH_BEFORE_BIN;
const rounds = Number(process.argv[2] ?? 3);
const settleMs = Number(process.env.BENCH_SETTLE_S ?? 15) * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function sample(pid) {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) / 1024;
  return { rss: kb('Rss'), anon: kb('Anonymous'), file: kb('Rss') - kb('Anonymous') };
}

/** The 1-minute load average at each measurement's end. */
const loads = [];

async function measure(args, env) {
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: boxEnv(env) });
  await sleep(settleMs);
  const samples = [];
  for (let i = 0; i < 5; i++) {
    samples.push(await sample(child.pid));
    await sleep(1000);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  loads.push(loadavg()[0]);
  return Object.fromEntries(['rss', 'anon', 'file'].map((k) => [k, median(samples.map((s) => s[k]))]));
}

const dir = await mkdtemp(join(tmpdir(), 'attache-bench-idle-'));
try {
  const pty = await openPtyPair(join(dir, 'pty'));
  const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', intervalMs: 1000 });
  await device.open();
  device.start();
  const configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      version: 1,
      gateway: { id: 'gw-idle', dataDir: join(dir, 'data') },
      devices: [
        { id: 'spo2', adapter: 'rs232', port: { path: pty.gatewayPath }, format: profileFormat('nonin') },
      ],
    }),
  );
  let bin = process.env.BENCH_BIN;
  if (!bin) {
    const bundle = fileURLToPath(new URL('../scripts/bundle.mjs', import.meta.url));
    await promisify(execFile)(process.execPath, [bundle, join(dir, 'release')]);
    bin = join(dir, 'release/packages/cli/dist/bin.js');
  }
  const { flags, env } = await unitStart();
  const beforeFlags = process.env.BENCH_BEFORE_FLAGS?.split(' ').filter(Boolean) ?? flags;
  const red =
    process.env.NODE_RED_DIR && join(process.env.NODE_RED_DIR, 'node_modules', 'node-red', 'red.js');
  const runs = { before: [], attache: [], bare: [], nodeRed: [] };
  for (let r = 0; r < rounds; r++) {
    if (before) runs.before.push(await measure([...beforeFlags, before, 'run', '--config', configPath], env));
    runs.attache.push(await measure([...flags, bin, 'run', '--config', configPath], env));
    runs.bare.push(await measure(['-e', 'setInterval(() => {}, 1000)'], {}));
    if (red) {
      const port = String(await getFreePort());
      runs.nodeRed.push(await measure([red, '--userDir', join(dir, `node-red-${r}`), '--port', port], {}));
    }
  }
  device.stop();
  await device.close();
  await pty.close();
  const line = (name, list) => {
    const m = (k) => median(list.map((x) => x[k])).toFixed(1);
    const each = list.map((x) => x.rss.toFixed(1)).join(' / ');
    return `${name}: RSS ${m('rss')} MB (rounds ${each}), anonymous ${m('anon')} MB, file-backed ${m('file')} MB`;
  };
  console.log(
    `idle RSS, median of ${rounds} rounds taken in turn (${flags.join(' ')} ${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')})`,
  );
  if (before) console.log(`  ${line(`before: ${beforeFlags.join(' ')} ${before}`, runs.before)}`);
  console.log(`  ${line(`attache run, 1 oximeter at 1 line/s (${bin})`, runs.attache)}`);
  console.log(`  ${line('bare node', runs.bare)}`);
  if (red) {
    console.log(`  ${line('Node-RED 4, empty flows', runs.nodeRed)}`);
    const ratio = (list) => median(list.map((x) => x.rss)) / median(runs.nodeRed.map((x) => x.rss));
    if (before) console.log(`  before / Node-RED: ${ratio(runs.before).toFixed(2)}`);
    console.log(`  attache / Node-RED: ${ratio(runs.attache).toFixed(2)} (target <= 0.55)`);
  }
  console.log(
    `  load average (1 min) ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)} during the run`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
