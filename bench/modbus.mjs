// `node bench/modbus.mjs`: the Modbus adapter against Debian's pymodbus server over TCP (issue 4).
// Nothing is asserted: figures vary with the machine. `BENCH_SECONDS` shortens the run (default 60).
//   1. 10 devices × 50 registers (25 float32 each) polled at 1 Hz through one shared TCP connection
//      (units 1–10 behind one server, as behind a Modbus gateway): CPU % of one core, RSS, missed polls.
//   2. Latency of one 50-register read: ours in-process (cold: connect + read + close, and warm: on an
//      open connection) vs mbpoll (`-1 -c 50`, its process start measured by `mbpoll -V` subtracted).
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createModbusAdapters, ModbusClient, readRegisters } from '@attache/adapter-modbus';
import { startModbusServer } from '@attache/devkit';

const run = promisify(execFile);
const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const values = Array.from({ length: 25 }, (_, i) => ({
  table: 'hr',
  address: 2 * i,
  type: 'float32',
  value: 20 + i / 4,
}));
const units = Object.fromEntries(Array.from({ length: 10 }, (_, u) => [u + 1, values]));
const server = await startModbusServer({ transport: 'tcp', units });
const bus = { transport: 'tcp', host: '127.0.0.1', port: server.port };

async function load() {
  const registers = values.map((v, i) => ({
    name: `t${i}`,
    table: 'holding-register',
    address: v.address,
    type: 'float32',
    order: 'ABCD',
    scale: 1,
    offset: 0,
    code: `LOCAL_T${i}`,
    system: 'LOCAL',
    unit: 'Cel',
    questionableWhenNonZero: false,
  }));
  const devices = Array.from({ length: 10 }, (_, u) => ({
    id: `dev-${u + 1}`,
    adapter: 'modbus',
    bus,
    unitId: u + 1,
    profile: 'p',
    pollIntervalMs: 1000,
    timeoutMs: 1000,
    rawFrames: false,
  }));
  let readings = 0;
  const adapters = createModbusAdapters({
    devices,
    profiles: { p: { registers } },
    sink: async () => {
      readings++;
    },
  });
  for (const a of adapters) await a.start();
  await new Promise((r) => setTimeout(r, 2000)); // connected and warm
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const before = adapters.map((a) => a.status());
  let rss = 0;
  const sampler = setInterval(() => {
    rss = Math.max(rss, process.memoryUsage().rss);
  }, 500);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const after = adapters.map((a) => a.status());
  for (const a of adapters) await a.stop();
  const sum = (key) => after.reduce((n, s, i) => n + s[key] - before[i][key], 0);
  console.log(`10 devices × 50 registers, 1 Hz, ${seconds} s over TCP (one connection):`);
  console.log(
    `  polls ${fmt(sum('polls'))} (expected ≈ ${10 * seconds}), stored ${fmt(sum('stored'))}, ` +
      `missed ${sum('missedPolls')}, unanswered ${sum('unanswered')}, readings ${fmt(readings)}`,
  );
  console.log(
    `  CPU ${fmt(((cpu.user + cpu.system) / 1000 / wall) * 100, 2)} % of one core, peak RSS ${fmt(rss / 2 ** 20, 1)} MB`,
  );
}

async function timed(fn, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function latency() {
  const n = 50;
  const read = { unitId: 1, table: 'holding-register', address: 0, count: 50, timeoutMs: 1000 };
  const cold = await timed(() => readRegisters({ bus, ...read, type: 'uint16', count: 50 }), n);
  const client = new ModbusClient({ bus });
  client.acquire();
  const warm = await timed(() => client.read(read), 200);
  await client.release();
  const args = ['-m', 'tcp', '-p', String(server.port), '-0', '-1', '-r', '0', '-c', '50', '127.0.0.1'];
  const mbpoll = await timed(() => run('mbpoll', args), n);
  const spawnOnly = await timed(() => run('mbpoll', ['-V']).catch(() => undefined), n);
  const mbpollRead = Math.max(mbpoll - spawnOnly, 0.001);
  console.log('one 50-register read, median:');
  console.log(
    `  attache cold (connect + read + close) ${fmt(cold, 3)} ms; warm (open connection) ${fmt(warm, 3)} ms`,
  );
  console.log(
    `  mbpoll -1 -c 50 ${fmt(mbpoll, 3)} ms, its process start (mbpoll -V) ${fmt(spawnOnly, 3)} ms → read ${fmt(mbpollRead, 3)} ms`,
  );
  console.log(`  ratio cold/mbpoll ${fmt(cold / mbpollRead, 2)}; warm/mbpoll ${fmt(warm / mbpollRead, 2)}`);
}

try {
  await load();
  await latency();
} finally {
  await server.stop();
}
