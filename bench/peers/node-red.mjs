// The two figures of `make bench-peers` that run Attaché and Node-RED 4 side by side, each as its own
// process, taking turns (Attaché, Node-RED, Attaché, ...), CPU read from /proc/PID/stat over the same
// window for each:
//   - serial lines: 20,000 Nonin-style lines written at once to the device end of a socat pty.
//     Attaché: `attache run` with one rs232 device, each line normalized and stored durably
//     (encrypted, synced group commits); done at the gateway's last CPU activity once its status
//     (control socket, asked only when its CPU time stood still for 100 ms) counts them all.
//     Node-RED: serial in (node-red-node-serialport) → MQTT out (QoS 1) to the bench's mosquitto
//     with a client certificate (mutual TLS), nothing durable; done when a subscriber has received
//     them all, its CPU counted until it is idle again.
//   - Modbus: 10 units × 50 registers (25 float32 each) of one pymodbus server polled at 1 Hz over one
//     TCP connection. Attaché: `attache run` with 10 modbus devices, every poll normalized and stored
//     durably. Node-RED: 10 modbus-read nodes (node-red-contrib-modbus) on one modbus-client, the
//     values going nowhere. % of a core over the same number of seconds, the requests the server
//     answered meanwhile counted for each.
// Node-RED runs with `--userDir` in a temporary directory; the flow files beside this one
// (node-red-serial.json, node-red-modbus.json) become its flows.json, their `${BENCH_*}` properties
// filled from the environment by Node-RED itself.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  createTestPki,
  getFreePort,
  openPtyPair,
  profileFormat,
  startModbusServer,
  startMosquitto,
} from '@attache/devkit';

const exec = promisify(execFile);
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const bin = here('../../packages/cli/dist/bin.js');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
const clockTicks = Number((await exec('getconf', ['CLK_TCK'])).stdout.trim()) || 100;

/** User + system CPU time of `pid` so far, in ms, from /proc/PID/stat (fields 14 and 15). */
export async function cpuMs(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

/** Resolves when `test` is true of `child`'s output so far; rejects when it exits first or after `ms`. */
function outputUntil(child, output, test, ms, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!test(output.text)) return;
      finish();
      resolve();
    };
    const exited = () => {
      finish();
      reject(new Error(`${what}: the process exited first; its output ends: ${output.text.slice(-600)}`));
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`${what}: not within ${ms} ms; output ends: ${output.text.slice(-600)}`));
    }, ms);
    const finish = () => {
      clearTimeout(timer);
      output.listeners.delete(check);
      child.off('exit', exited);
    };
    output.listeners.add(check);
    child.once('exit', exited);
    check();
  });
}

/** The processes started here, killed if the bench exits while they run. */
const live = new Set();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function spawnWatched(command, args, options) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { text: '', listeners: new Set() };
  const take = (chunk) => {
    output.text = (output.text + chunk).slice(-20_000);
    for (const listener of [...output.listeners]) listener();
  };
  child.stdout.setEncoding('utf8').on('data', take);
  child.stderr.setEncoding('utf8').on('data', take);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return {
    child,
    output: () => output.text,
    until: (test, ms, what) => outputUntil(child, output, test, ms, what),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
}

/** Node-RED 4 from `peersDir` with `flowFile` as its flows, `env` for the flow's `${BENCH_*}`. */
async function startNodeRed(peersDir, userDir, flowFile, env) {
  await mkdir(userDir, { recursive: true });
  await copyFile(flowFile, join(userDir, 'flows.json'));
  const red = join(peersDir, 'node_modules', 'node-red', 'red.js');
  const port = await getFreePort();
  return spawnWatched(process.execPath, [red, '--userDir', userDir, '--port', String(port), 'flows.json'], {
    env: { ...process.env, ...env },
  });
}

/** One request on the gateway's control socket (one JSON line each way). */
function control(socketPath, method) {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ id: 1, method })}\n`));
    socket.on('data', (chunk) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      socket.destroy();
      const answer = JSON.parse(buffer.slice(0, nl));
      if (answer.error) reject(new Error(`${answer.error.code}: ${answer.error.message}`));
      else resolve(answer.result);
    });
    socket.on('error', reject);
  });
}

/** `attache run` (as installed: the binary and its shebang flags) on `config` written into `dir`. */
async function startAttache(dir, config) {
  await mkdir(dir, { recursive: true });
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify({ version: 1, ...config }));
  const gateway = spawnWatched(bin, ['run', '--config', configPath], {});
  const socketPath = join(config.gateway.dataDir, 'attache.sock');
  const status = () => control(socketPath, 'status');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await status().catch(() => undefined);
    if (s?.adapters.length && s.adapters.every((a) => a.state === 'connected')) break;
    if (gateway.child.exitCode !== null || Date.now() > deadline) {
      await gateway.stop();
      throw new Error(
        `attache run: devices not connected within 30 s (${JSON.stringify(s?.adapters)}); output ends: ${gateway.output().slice(-600)}`,
      );
    }
    await sleep(100);
  }
  return { ...gateway, status };
}

const lineCount = 20_000;
/**
 * A status request costs the gateway about 1 ms of CPU (measured on this machine), so asking every
 * 20 ms during a burst of 2 s would add some 4 µs to each line. Instead the bench watches the
 * gateway's CPU time in /proc (free for the gateway) and asks for its status only once that has
 * not moved for `quietMs`: the burst ended at the last move.
 */
const sampleEveryMs = 5;
const quietMs = 100;
const lines = Array.from(
  { length: lineCount },
  (_, i) => `SPO2=${90 + (i % 10)} HR=${60 + (i % 40)}\r\n`,
).join('');

/**
 * Writes the lines at once to the device end; lines/s and CPU µs per line of `pid` until `done()`
 * resolves, or until the time and CPU time it resolves with (`{ at, cpuMs }`).
 */
async function burst(pty, pid, done) {
  const out = createWriteStream(pty.devicePath);
  const cpu0 = await cpuMs(pid);
  const t0 = performance.now();
  out.write(lines);
  const end = (await done()) ?? { at: performance.now(), cpuMs: await cpuMs(pid) };
  out.destroy();
  return {
    rate: lineCount / ((end.at - t0) / 1000),
    cpuUs: ((end.cpuMs - cpu0) * 1000) / lineCount,
  };
}

/**
 * Resolves `{ at, cpuMs }` of the last CPU activity of `pid` once its CPU time has not moved for
 * {@link quietMs} and `finished()` (asked only then) resolves true; rejects after 300 s.
 */
async function quiet(pid, finished) {
  let last = { at: performance.now(), cpuMs: await cpuMs(pid) };
  let asked = false;
  const deadline = last.at + 300_000;
  for (;;) {
    await sleep(sampleEveryMs);
    if (performance.now() > deadline) throw new Error(`process ${pid}: not finished within 300 s`);
    const now = { at: performance.now(), cpuMs: await cpuMs(pid) };
    if (now.cpuMs !== last.cpuMs) {
      last = now;
      asked = false;
    } else if (!asked && now.at - last.at >= quietMs) {
      asked = true;
      if (await finished()) return last;
    }
  }
}

async function attacheSerial(dir) {
  const pty = await openPtyPair(join(dir, 'pty'));
  const gateway = await startAttache(dir, {
    gateway: { id: 'gw-bench-serial', dataDir: join(dir, 'data') },
    devices: [
      { id: 'spo2', adapter: 'rs232', port: { path: pty.gatewayPath }, format: profileFormat('nonin') },
    ],
  });
  let malformed = 0;
  try {
    const result = await burst(pty, gateway.child.pid, () =>
      quiet(gateway.child.pid, async () => {
        const [adapter] = (await gateway.status()).adapters;
        malformed = adapter.malformed;
        return adapter.stored + adapter.malformed >= lineCount;
      }),
    );
    return { ...result, malformed };
  } finally {
    await gateway.stop();
    await pty.close();
  }
}

/**
 * `mosquitto_sub` (QoS 1, the subscriber certificate) that exits after `count` messages on `topic`;
 * its output goes to a file, so that counting costs the bench process nothing. Resolves once the
 * broker acknowledged the subscription.
 */
async function countingSubscriber(broker, pki, topic, count, file) {
  const out = await open(file, 'w');
  // stdbuf: mosquitto_sub block-buffers its -d lines, and the SUBACK line would come late.
  const child = spawn(
    'stdbuf',
    [
      '-oL',
      'mosquitto_sub',
      ...['-h', broker.host, '-p', String(broker.port), '-V', 'mqttv5', '-q', '1', '-t', topic],
      ...['--cafile', pki.caFile, '--cert', pki.subscriberCertFile, '--key', pki.subscriberKeyFile],
      ...['-i', `bench-sub-${process.pid}-${Date.now()}`, '-d', '-C', String(count), '-F', '%l'],
    ],
    { stdio: ['ignore', out.fd, 'inherit'] },
  );
  const exited = once(child, 'exit');
  await out.close();
  const deadline = Date.now() + 10_000;
  while (!(await readFile(file, 'utf8')).includes('received SUBACK')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('mosquitto_sub did not subscribe');
    await sleep(50);
  }
  return {
    done: async (ms) => {
      const timer = setTimeout(() => child.kill('SIGTERM'), ms);
      await exited;
      clearTimeout(timer);
      if (child.exitCode !== 0)
        throw new Error(`the subscriber did not receive ${count} messages within ${ms} ms`);
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

async function nodeRedSerial(peersDir, dir, broker, pki, round) {
  await mkdir(dir, { recursive: true });
  const pty = await openPtyPair(join(dir, 'pty'));
  const topic = `bench/node-red/lines/${round}`;
  const subscriber = await countingSubscriber(broker, pki, topic, lineCount, join(dir, 'subscriber.out'));
  const red = await startNodeRed(peersDir, join(dir, 'node-red'), here('./node-red-serial.json'), {
    BENCH_SERIAL_PATH: pty.gatewayPath,
    BENCH_MQTT_PORT: String(broker.port),
    BENCH_MQTT_TOPIC: topic,
    BENCH_TLS_CERT: pki.subscriberCertFile,
    BENCH_TLS_KEY: pki.subscriberKeyFile,
    BENCH_TLS_CA: pki.caFile,
  });
  try {
    await red.until(
      (text) => /Connected to broker/.test(text) && /serial port .* opened/.test(text),
      60_000,
      'Node-RED serial flow ready (serial port opened, broker connected)',
    );
    // Ends when the subscriber has every line; its CPU once Node-RED is idle (the last PUBACKs).
    return await burst(pty, red.child.pid, async () => {
      await subscriber.done(300_000);
      const at = performance.now();
      return { at, cpuMs: (await quiet(red.child.pid, async () => true)).cpuMs };
    });
  } finally {
    await red.stop();
    await subscriber.stop();
    await pty.close();
  }
}

/** Serial lines, Attaché vs Node-RED serial-in → MQTT: `rounds` turns each; `row` gets the medians. */
export async function serialFigure({ peersDir, dir, rounds, row }) {
  const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-bench-serial' });
  const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
  const ours = [];
  const theirs = [];
  try {
    for (let r = 0; r < rounds; r++) {
      ours.push(await attacheSerial(join(dir, `attache-serial-${r}`)));
      theirs.push(await nodeRedSerial(peersDir, join(dir, `node-red-serial-${r}`), broker, pki, r));
      const [a, b] = [ours.at(-1), theirs.at(-1)];
      console.log(
        `  serial turn ${r + 1}: attache ${fmt(a.rate)} lines/s ${fmt(a.cpuUs, 1)} µs/line; Node-RED ${fmt(b.rate)} lines/s ${fmt(b.cpuUs, 1)} µs/line`,
      );
    }
  } finally {
    await broker.stop();
  }
  const a = { rate: median(ours.map((o) => o.rate)), cpu: median(ours.map((o) => o.cpuUs)) };
  const malformed = ours.reduce((n, o) => n + o.malformed, 0);
  const b = { rate: median(theirs.map((o) => o.rate)), cpu: median(theirs.map((o) => o.cpuUs)) };
  row(
    'serial lines, 20,000 at once through a socat pty',
    `${fmt(a.rate)} lines/s, ${fmt(a.cpu, 1)} µs CPU/line (attache run: normalized, stored durably, encrypted${malformed ? `; ${malformed} lines counted malformed` : ''})`,
    `Node-RED 4 serial in → MQTT out QoS 1 (mutual TLS, same mosquitto; nothing durable): ${fmt(b.rate)} lines/s, ${fmt(b.cpu, 1)} µs CPU/line`,
    `${(a.rate / b.rate).toFixed(2)}; CPU ${(a.cpu / b.cpu).toFixed(2)}×`,
  );
}

const modbusValues = Array.from({ length: 25 }, (_, i) => ({
  table: 'hr',
  address: 2 * i,
  type: 'float32',
  value: 20 + i / 4,
}));

/** % of a core of `pid` over `seconds`, and the requests `server` answered meanwhile. */
async function pollingLoad(pid, server, seconds) {
  const answered = async () => (await server.requests()).filter((q) => q.answered !== null).length;
  const before = await answered();
  const cpu0 = await cpuMs(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = (await cpuMs(pid)) - cpu0;
  const wallMs = performance.now() - t0;
  return { core: (cpu / wallMs) * 100, answered: (await answered()) - before, seconds: wallMs / 1000 };
}

async function attacheModbus(dir, server, seconds) {
  const registers = modbusValues.map((v, i) => ({
    name: `t${i}`,
    table: 'holding-register',
    address: v.address,
    type: 'float32',
    code: `LOCAL_T${i}`,
    unit: 'Cel',
  }));
  const gateway = await startAttache(dir, {
    gateway: { id: 'gw-bench-modbus', dataDir: join(dir, 'data') },
    devices: Array.from({ length: 10 }, (_, u) => ({
      id: `unit-${u + 1}`,
      adapter: 'modbus',
      bus: { transport: 'tcp', host: '127.0.0.1', port: server.port },
      unitId: u + 1,
      profile: 'fifty',
      pollIntervalMs: 1000,
      timeoutMs: 1000,
    })),
    modbusProfiles: { fifty: { description: '25 float32 (50 registers)', registers } },
  });
  try {
    await sleep(3000);
    return await pollingLoad(gateway.child.pid, server, seconds);
  } finally {
    await gateway.stop();
  }
}

async function nodeRedModbus(peersDir, dir, server, seconds) {
  const red = await startNodeRed(peersDir, join(dir, 'node-red'), here('./node-red-modbus.json'), {
    BENCH_MODBUS_PORT: String(server.port),
  });
  try {
    await red.until((text) => /Started flows/.test(text), 60_000, 'Node-RED Modbus flow started');
    await sleep(3000);
    return await pollingLoad(red.child.pid, server, seconds);
  } finally {
    await red.stop();
  }
}

/** Modbus 10 units × 50 registers at 1 Hz, Attaché vs Node-RED + node-red-contrib-modbus. */
export async function modbusFigure({ peersDir, dir, rounds, row, seconds }) {
  const server = await startModbusServer({
    transport: 'tcp',
    units: Object.fromEntries(Array.from({ length: 10 }, (_, u) => [u + 1, modbusValues])),
  });
  const ours = [];
  const theirs = [];
  try {
    for (let r = 0; r < rounds; r++) {
      ours.push(await attacheModbus(join(dir, `attache-modbus-${r}`), server, seconds));
      theirs.push(await nodeRedModbus(peersDir, join(dir, `node-red-modbus-${r}`), server, seconds));
      const [a, b] = [ours.at(-1), theirs.at(-1)];
      console.log(
        `  Modbus turn ${r + 1}: attache ${fmt(a.core, 2)} % (${a.answered} reads answered); Node-RED ${fmt(b.core, 2)} % (${b.answered})`,
      );
    }
  } finally {
    await server.stop();
  }
  const polls = (xs) => `${fmt(median(xs.map((o) => o.answered / o.seconds)), 1)} reads/s answered`;
  const a = median(ours.map((o) => o.core));
  const b = median(theirs.map((o) => o.core));
  row(
    `Modbus, 10 units × 50 registers at 1 Hz, ${seconds} s, one TCP connection to pymodbus`,
    `${fmt(a, 2)} % of a core (attache run: every poll normalized and stored durably; ${polls(ours)})`,
    `Node-RED 4 + node-red-contrib-modbus, 10 modbus-read nodes, values discarded: ${fmt(b, 2)} % of a core (${polls(theirs)})`,
    `${(a / b).toFixed(2)}×`,
  );
}
