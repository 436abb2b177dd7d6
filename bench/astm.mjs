// `node bench/astm.mjs`: sustained ASTM ingest at 115200 baud over a pty (socat) into a real
// `attache run` (adapter → normalizer → encrypted LevelCache, synced writes). The bench is the
// analyzer: ENQ, every frame awaiting its ACK, EOT, message after message. Reports results/s,
// NAKs, the gateway's CPU, and the time from writing a message's last frame to reading its ACK
// (the durable-write latency) p50/p99. Nothing is asserted: figures vary with the machine.
// A pty does not enforce the baud rate: "line rate" is computed from the bytes sent at 10 bits a byte.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frameAstmRecords } from '@attache/astm';
import { cbcMessage, openPtyPair } from '@attache/devkit';
import { SerialPort } from 'serialport';

const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'attache-bench-astm-'));
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const pty = await openPtyPair(join(dir, 'pty'));
const configPath = join(dir, 'config.json');
await writeFile(
  configPath,
  JSON.stringify({
    version: 1,
    gateway: { id: 'gw-bench-astm', dataDir: join(dir, 'data') },
    log: { level: 'warn' },
    cache: { commitIntervalMs: 2 },
    devices: [
      {
        id: 'hema',
        adapter: 'rs232',
        port: { path: pty.gatewayPath, baudRate: 115200 },
        format: { kind: 'astm' },
      },
    ],
  }),
);
const gateway = spawn(process.execPath, [bin, 'run', '--config', configPath], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
// Ready when the gateway answers on its control socket with the analyzer's port open.
for (let tries = 0; ; tries++) {
  const status = await new Promise((resolve) =>
    execFile(process.execPath, [bin, 'status', '--json', '--config', configPath], (err, stdout) =>
      resolve(err ? null : JSON.parse(stdout)),
    ),
  );
  if (status?.running && status.adapters[0]?.state === 'connected') break;
  if (tries > 100) throw new Error(`the gateway did not start: ${JSON.stringify(status)}`);
  await new Promise((r) => setTimeout(r, 200));
}

const port = new SerialPort({ path: pty.devicePath, baudRate: 115200 });
await new Promise((resolve, reject) => port.once('open', resolve).once('error', reject));
// Every byte the gateway sends, in order: a reply may arrive before the write that caused it has drained.
const received = [];
let waiter;
port.on('data', (chunk) => {
  received.push(...chunk);
  if (waiter && received.length > 0) {
    waiter(received.shift());
    waiter = undefined;
  }
});
const reply = () =>
  received.length > 0 ? Promise.resolve(received.shift()) : new Promise((resolve) => (waiter = resolve));
const write = (bytes) => new Promise((resolve) => port.write(bytes, () => port.drain(resolve)));

/** CPU ticks (user + system) of the gateway process. */
async function cpuTicks() {
  const stat = (await readFile(`/proc/${gateway.pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return Number(stat[11]) + Number(stat[12]);
}

const latencies = [];
let results = 0;
let naks = 0;
let bytes = 0;
let n = 0;
const cpu0 = await cpuTicks();
const start = performance.now();
while (performance.now() - start < seconds * 1000) {
  const records = cbcMessage({ count: 25 });
  // A distinct H.14 per message: every message is new to the gateway's de-duplication.
  records[0] = records[0].replace('20240627135000', String(20240627000000 + n++));
  const frames = frameAstmRecords(records);
  await write(Buffer.from([0x05]));
  if ((await reply()) !== 0x06) naks++;
  for (const [i, frame] of frames.entries()) {
    for (;;) {
      const sent = performance.now();
      await write(frame);
      const byte = await reply();
      if (i === frames.length - 1) latencies.push(performance.now() - sent);
      bytes += frame.length;
      if (byte === 0x06) break;
      naks++;
    }
  }
  await write(Buffer.from([0x04]));
  results += 25;
}
const elapsed = (performance.now() - start) / 1000;
const cpu = ((await cpuTicks()) - cpu0) / 100;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
console.log(
  `ASTM ingest over a pty for ${fmt(elapsed, 1)} s (${n} messages of 25 results, one synced write each):`,
);
console.log(`  results/s:            ${fmt(results / elapsed)}`);
console.log(`  frame bytes/s:        ${fmt(bytes / elapsed)} (115200 baud line rate: 11,520 bytes/s)`);
console.log(`  NAKs:                 ${naks}`);
console.log(`  gateway CPU:          ${fmt((cpu / elapsed) * 100, 1)} % of one core`);
console.log(`  last frame → ACK:     p50 ${fmt(pct(50), 1)} ms, p99 ${fmt(pct(99), 1)} ms`);
const line = bytes / elapsed / 11_520;
console.log(
  `  at a real 115200 line: ${fmt(Math.min(1, line) * 100)} % of the line ${line >= 1 ? '(the gateway keeps up)' : '(the gateway is the bottleneck)'}`,
);
port.close();
gateway.kill('SIGTERM');
await new Promise((r) => gateway.once('exit', r));
await pty.close();
await rm(dir, { recursive: true, force: true });
