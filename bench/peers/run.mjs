// `make bench-peers`: each figure of issue 23's table with Attaché and the tool a user would
// otherwise pick taking turns on the same input in one run, medians and ratios, and the machine's
// load. The peers are installed here, from the registries, into a temporary directory (never into
// the project): Node-RED 4 with node-red-node-serialport and node-red-contrib-modbus, bare
// classic-level. Debian's mosquitto_pub, mbpoll and python3-hl7 (its MLLP server) come with the
// build's Debian packages. Figures that need no download run even when the registry cannot be
// reached; the run then ends with status 1 and says so.
// Environment: BENCH_ROUNDS (default 3), BENCH_RECORDS (drain, default 100,000), BENCH_MODBUS_SECONDS
// (each turn of the Modbus figure, default 30), BENCH_QUIET_LOAD (1-minute load average to wait for,
// default half the cores), BENCH_QUIET_WAIT_S (longest wait, default 300), BENCH_ONLY (a comma-separated
// subset of hl7, append, drain, start, rss, serial, modbus; default all).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fsyncCeiling } from './fsync-probe.mjs';
import { modbusFigure, serialFigure } from './node-red.mjs';

const exec = promisify(execFile);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const records = Number(process.env.BENCH_RECORDS ?? 100_000);
const quietLoad = Number(process.env.BENCH_QUIET_LOAD ?? cpus().length / 2);
const quietWaitS = Number(process.env.BENCH_QUIET_WAIT_S ?? 300);
const modbusSeconds = Number(process.env.BENCH_MODBUS_SECONDS ?? 30);
const only = new Set((process.env.BENCH_ONLY ?? 'hl7,append,drain,start,rss,serial,modbus').split(','));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rows = [];
const problems = [];

function row(figure, attache, peer, ratio) {
  rows.push({ figure, attache, peer, ratio });
  console.log(`${figure}: Attaché ${attache} | peer ${peer} | ratio ${ratio} | load ${load()}`);
}

async function waitForQuiet() {
  const until = Date.now() + quietWaitS * 1000;
  while (loadavg()[0] > quietLoad && Date.now() < until) {
    console.log(`waiting for a quiet machine: load ${load()} > ${quietLoad}`);
    await sleep(10_000);
  }
  console.log(
    `load average ${load()} (${cpus().length} cores)${loadavg()[0] > quietLoad ? ': NOT quiet, figures are disturbed' : ''}`,
  );
}

/**
 * node-red-contrib-modbus (5.x) depends on `@openp4nr/modbus-serial`, its maintainers' build of
 * modbus-serial, declared as a tarball URL on their own package feed (dl.cloudsmith.io) and not
 * published on the npm registry: where that host cannot be reached, the install fails. Its code
 * uses modbus-serial's API (connectTCP, setID, setTimeout, readHoldingRegisters), so an `overrides`
 * entry installs the registry's modbus-serial under that name instead. npm picks the newest
 * release whose `engines` accept this Node (5.60 wants Node 22).
 */
const overrides = { '@openp4nr/modbus-serial': 'npm:modbus-serial@8.0.25' };

/**
 * Installs the npm peers into `dir` (two installs, so that a failing node-red-contrib-modbus does
 * not keep the others out); resolves the names installed, and prints their versions.
 */
async function installPeers(dir) {
  const groups = [['node-red@4', 'node-red-node-serialport', 'classic-level@3'], ['node-red-contrib-modbus']];
  const installed = new Set();
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true, overrides }));
  for (const packages of groups) {
    console.log(`installing peers into ${dir}: ${packages.join(' ')}`);
    try {
      await exec('npm', ['install', '--no-audit', '--no-fund', '--prefix', dir, ...packages], {
        timeout: 15 * 60_000,
        maxBuffer: 1 << 24,
      });
      for (const name of packages) installed.add(name.replace(/@\d+$/, ''));
    } catch (err) {
      // The line naming what failed (a URL that did not resolve, a 404, a version not found) first.
      const errors = `${err.stderr ?? err.message}`
        .split('\n')
        .filter((line) => line.startsWith('npm error '))
        .map((line) => line.slice('npm error '.length));
      const why =
        errors.find((line) => /request to|404|ETARGET|notarget/i.test(line)) ?? errors[0] ?? err.message;
      problems.push(`${packages.join(', ')} could not be installed from the registry (${why.trim()})`);
      console.log(`PEERS NOT INSTALLED: ${problems.at(-1)}`);
    }
  }
  const versions = [];
  for (const name of [
    ...installed,
    ...(installed.has('node-red-contrib-modbus') ? ['@openp4nr/modbus-serial'] : []),
  ]) {
    const meta = JSON.parse(await readFile(join(dir, 'node_modules', name, 'package.json'), 'utf8'));
    versions.push(`${name} ${meta.version}${meta.name === name ? '' : ` (${meta.name})`}`);
  }
  console.log(`peers installed: ${versions.join(', ') || 'none'}`);
  return installed;
}

/** `node bench/hl7.mjs` with `env`; its "= n msg/s; ACK p50 .. p99 x ms" line of each case. */
async function hl7(env) {
  const { stdout } = await exec(process.execPath, [here('../hl7.mjs'), '0'], {
    env: { ...process.env, ...env },
    timeout: 600_000,
  });
  return stdout
    .trim()
    .split('\n')
    .map((line) => ({
      rate: Number(line.match(/= ([\d,]+) msg\/s/)?.[1].replaceAll(',', '')),
      p99: Number(line.match(/p99 ([\d.]+) ms/)?.[1]),
      cpu: Number(line.match(/CPU ([\d,.]+) µs\/msg/)?.[1].replaceAll(',', '') ?? Number.NaN),
    }));
}

async function pythonMllp() {
  const probe = await exec('/usr/bin/python3', ['-c', 'import hl7.mllp']).then(
    () => true,
    () => false,
  );
  if (!probe) return undefined;
  const child = spawn('/usr/bin/python3', [here('./mllp-server.py')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = await once(child.stdout, 'data');
  return { port: Number(String(chunk).trim()), stop: () => child.kill() };
}

async function hl7Figures() {
  const ceiling = [];
  const one = [];
  const twenty = [];
  const python = [];
  const server = await pythonMllp();
  for (let r = 0; r < rounds; r++) {
    ceiling.push(await fsyncCeiling(tmpdir(), 2000));
    one.push((await hl7({ HL7_BENCH_CONNECTIONS: '1' }))[0]);
    twenty.push((await hl7({ HL7_BENCH_CONNECTIONS: '20' }))[0]);
    if (server)
      python.push((await hl7({ HL7_BENCH_PORT: String(server.port), HL7_BENCH_CONNECTIONS: '1' }))[0]);
  }
  server?.stop();
  const fsyncRate = median(ceiling.map((c) => c.perSecond));
  const oneRate = median(one.map((o) => o.rate));
  row(
    'HL7, 1 connection, ACK after a durable write',
    `${fmt(oneRate)} msg/s, ACK p99 ${fmt(median(one.map((o) => o.p99)), 2)} ms, ${fmt(median(one.map((o) => o.cpu)), 1)} µs CPU/msg`,
    `fsync ceiling ${fmt(fsyncRate)} writes/s (write + fdatasync p50 ${fmt(median(ceiling.map((c) => c.p50)), 3)} ms)`,
    (oneRate / fsyncRate).toFixed(2),
  );
  row(
    'HL7, 20 connections, ACK after a durable write',
    `${fmt(median(twenty.map((o) => o.rate)))} msg/s, ACK p99 ${fmt(median(twenty.map((o) => o.p99)), 2)} ms, ${fmt(median(twenty.map((o) => o.cpu)), 1)} µs CPU/msg`,
    'target 5,000 msg/s',
    (median(twenty.map((o) => o.rate)) / 5000).toFixed(2),
  );
  if (server) {
    const pythonRate = median(python.map((o) => o.rate));
    row(
      'HL7, 1 connection, vs an MLLP server that stores nothing',
      `${fmt(oneRate)} msg/s (durable)`,
      `python3-hl7 MLLP server ${fmt(pythonRate)} msg/s (ACK only)`,
      (oneRate / pythonRate).toFixed(2),
    );
  } else problems.push('python3-hl7 is not installed (Debian python3-hl7): its MLLP server figure not run');
}

async function appendFigures(peersDir) {
  const run = async (mode) =>
    JSON.parse(
      (
        await exec(process.execPath, [here('./append.mjs'), mode, String(records), peersDir ?? ''], {
          timeout: 600_000,
        })
      ).stdout,
    );
  const ours = [];
  const theirs = [];
  for (let r = 0; r < rounds; r++) {
    ours.push(await run('attache'));
    if (peersDir) theirs.push(await run('classic-level'));
  }
  const a = median(ours.map((o) => o.perSecond));
  const cpu = median(ours.map((o) => o.cpuUs));
  if (!peersDir)
    return row(
      'durable encrypted batched append',
      `${fmt(a)} records/s, ${fmt(cpu, 1)} µs CPU`,
      'not installed',
      '-',
    );
  const b = median(theirs.map((o) => o.perSecond));
  row(
    'durable encrypted batched append (groups of 1,000)',
    `${fmt(a)} records/s, ${fmt(cpu, 1)} µs CPU/record`,
    `bare classic-level batch() synced, same JSON unencrypted: ${fmt(b)} records/s, ${fmt(median(theirs.map((o) => o.cpuUs)), 1)} µs`,
    (a / b).toFixed(2),
  );
}

async function drainFigure() {
  const { stdout } = await exec(process.execPath, [here('../drain.mjs'), String(records)], {
    timeout: 1_800_000,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('drain of')) ?? stdout;
  // drain.mjs prints: the drain | gateway | window process | together | mosquitto_pub | ratio.
  const parts = line.split(' | ');
  const peer = parts.find((p) => p.startsWith('mosquitto_pub')) ?? '?';
  row(
    'drain (gateway + window process) vs mosquitto_pub, same batches',
    parts.filter((p) => p !== peer && !p.startsWith('ratio')).join('; '),
    peer,
    line.match(/ratio ([\d.]+)/)?.[1] ?? '?',
  );
}

async function startFigures() {
  const { stdout } = await exec(process.execPath, [here('./start.mjs'), String(Math.max(5, rounds * 3))], {
    timeout: 600_000,
  });
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const bare = lines.find((l) => l.command === 'node -e 0');
  const mbpoll = lines.find((l) => l.command.startsWith('mbpoll'));
  for (const l of lines.filter((x) => x.command.startsWith('attache'))) {
    const peer = l.command === 'attache modbus read' ? `, mbpoll ${fmt(mbpoll.medianMs, 1)} ms` : '';
    row(
      `command start: ${l.command}`,
      `${fmt(l.medianMs, 1)} ms`,
      `node -e 0 ${fmt(bare.medianMs, 1)} ms${peer}`,
      l.ratioToBareNode.toFixed(2),
    );
  }
}

/** `node bench/idle-rss.mjs`: attache run as its unit starts it, bare Node and Node-RED 4 in turns. */
async function idleRss(peersDir) {
  const { stdout } = await exec(process.execPath, [here('../idle-rss.mjs'), String(rounds)], {
    env: { ...process.env, ...(peersDir ? { NODE_RED_DIR: peersDir } : {}) },
    timeout: 1_800_000,
  });
  const rss = (name) => Number(new RegExp(`${name}[^:]*: RSS ([\\d.]+) MB`).exec(stdout)?.[1]);
  const [ours, bare, theirs] = [rss('attache run'), rss('bare node'), rss('Node-RED 4')];
  if (!peersDir)
    return row('idle RSS', `${fmt(ours, 1)} MB`, `bare Node ${fmt(bare, 1)} MB; Node-RED not installed`, '-');
  row(
    'idle RSS',
    `${fmt(ours, 1)} MB (attache run from the shipped release as its unit starts it, 1 oximeter at 1 line/s)`,
    `Node-RED 4 ${fmt(theirs, 1)} MB (empty flows); bare Node ${fmt(bare, 1)} MB`,
    (ours / theirs).toFixed(2),
  );
}

const dir = await mkdtemp(join(tmpdir(), 'attache-bench-peers-'));
try {
  await waitForQuiet();
  const installed = await installPeers(join(dir, 'peers'));
  const peersDir =
    installed.has('node-red') && installed.has('classic-level') ? join(dir, 'peers') : undefined;
  if (only.has('hl7')) await hl7Figures();
  if (only.has('append')) await appendFigures(peersDir);
  if (only.has('drain')) await drainFigure();
  if (only.has('start')) await startFigures();
  if (only.has('rss')) await idleRss(peersDir);
  if (only.has('serial')) {
    if (installed.has('node-red') && installed.has('node-red-node-serialport'))
      await serialFigure({ peersDir: join(dir, 'peers'), dir: join(dir, 'serial'), rounds, row });
    else
      problems.push(
        'serial lines vs Node-RED not run: Node-RED or node-red-node-serialport is not installed',
      );
  }
  if (only.has('modbus')) {
    if (installed.has('node-red') && installed.has('node-red-contrib-modbus'))
      await modbusFigure({
        peersDir: join(dir, 'peers'),
        dir: join(dir, 'modbus'),
        rounds,
        row,
        seconds: modbusSeconds,
      });
    else
      problems.push(
        'Modbus vs node-red-contrib-modbus not run: Node-RED or node-red-contrib-modbus is not installed',
      );
  }
  console.log('\n| figure | Attaché | peer | ratio |\n|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.figure} | ${r.attache} | ${r.peer} | ${r.ratio} |`);
  console.log(`\nload average at the end: ${load()}`);
  for (const p of problems) console.log(`note: ${p}`);
  if (installed.size < 4) {
    console.error(
      'bench-peers: some peers could not be installed from the registry (see the notes above); every figure that needs no download was run',
    );
    process.exitCode = 1;
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
