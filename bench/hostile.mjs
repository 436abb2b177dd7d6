// Hostile input (issue 22): how long the worst single inputs take, and whether a device sending them
// at full speed holds up another device's ACKs. Part 1 times pathological inputs through the parsers
// (an HL7 NM value of HOSTILE_DIGITS digits and a letter; an ASTM message of HOSTILE_RECORDS records
// fed frame by frame; an ASTM result of HOSTILE_DIGITS digits). Part 2 runs two EthernetAdapters in
// this process, the "gateway": a monitor sends ORU^R01 messages one after the other (waiting for each
// AA) from a child process, alone for HOSTILE_SECONDS, then while a second device on the same gateway
// sends pathological HL7 messages back to back, then while a third blasts a HOSTILE_RECORDS-record
// ASTM message without waiting for ACKs; prints the monitor's ACK p50/p99 in each phase. Nothing is
// asserted. HOSTILE_BENCH_BASELINE=/path/to/another/checkout (built) runs the same against its code.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { getFreePort, MllpSenderSimulator, oruR01Message, pcd01VitalSigns } from '@attache/devkit';

const base = process.env.HOSTILE_BENCH_BASELINE ?? fileURLToPath(new URL('..', import.meta.url));
const digits = Number(process.env.HOSTILE_DIGITS ?? 100_000);
const records = Number(process.env.HOSTILE_RECORDS ?? 25_000);
const seconds = Number(process.env.HOSTILE_SECONDS ?? 10);
const load = (pkg) => import(join(base, 'packages', pkg, 'dist/index.js'));

const msh = 'MSH|^~\\&|HOSTILE|X|GW|H|20260101120000||ORU^R01|1|P|2.6';
const hl7Digits = `${msh}\rOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||${'1'.repeat(digits)}x`;
const astmText = (n) => `H|\\^&\r${'R|1|^^^GLU|5.4|mmol/L||N||F\r'.repeat(n)}L|1|N\r`;

/** `text` as E1381 frames of 240 characters: ENQ, frames, EOT. */
function astmFrames(text) {
  const parts = [Buffer.from([0x05])];
  for (let i = 0, fn = 1; i < text.length; i += 240, fn = (fn + 1) % 8) {
    const body = `${fn}${text.slice(i, i + 240)}${i + 240 >= text.length ? '\x03' : '\x17'}`;
    let sum = 0;
    for (const ch of body) sum += ch.charCodeAt(0);
    parts.push(
      Buffer.from(`\x02${body}${(sum % 256).toString(16).toUpperCase().padStart(2, '0')}\r\n`, 'latin1'),
    );
  }
  parts.push(Buffer.from([0x04]));
  return Buffer.concat(parts);
}

function timed(what, fn) {
  const t0 = performance.now();
  fn();
  console.log(`  ${what}: ${(performance.now() - t0).toFixed(1)} ms`);
}

async function worstInputs() {
  const { interpretHl7 } = await load('hl7');
  const { AstmReceiver, astmReadings, parseAstmMessage } = await load('astm');
  console.log(`worst single inputs (${base}):`);
  timed(`HL7 OBX-5 of ${digits} digits and a letter`, () =>
    interpretHl7(Buffer.from(hl7Digits, 'latin1'), { versions: ['2.6'] }),
  );
  const frames = astmFrames(astmText(records));
  timed(`ASTM message of ${records} records (${frames.length} bytes) frame by frame`, () => {
    const receiver = new AstmReceiver({ now: () => 0, maxMessageText: frames.length });
    receiver.feed(frames);
  });
  const result = `H|\\^&\rR|1|^^^GLU|${'1'.repeat(digits)}x\rL|1|N\r`;
  timed(`ASTM result of ${digits} digits and a letter`, () =>
    astmReadings(parseAstmMessage(result), { comments: false }),
  );
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function gateway() {
  const { EthernetAdapter } = await load('adapter-ethernet');
  const { validateConfig } = await load('core');
  const ports = { monitor: await getFreePort(), hl7: await getFreePort(), astm: await getFreePort() };
  const device = (id, port, kind) => ({
    id,
    adapter: 'ethernet',
    endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
    format: { kind },
  });
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-bench' },
    devices: [
      device('monitor', ports.monitor, 'hl7-mllp'),
      device('hostile-hl7', ports.hl7, 'hl7-mllp'),
      device('hostile-astm', ports.astm, 'astm'),
    ],
  });
  const sink = async () => {};
  const { Hl7Driver } = await load('hl7');
  const { AstmDriver } = await load('astm');
  const driver = (d) =>
    d.format.kind === 'astm'
      ? new AstmDriver({ format: d.format, adapter: 'ethernet' })
      : new Hl7Driver({ format: d.format, adapter: 'ethernet' });
  const adapters = config.devices.map((d) => new EthernetAdapter({ device: d, driver: driver(d), sink }));
  for (const a of adapters) await a.start();
  const child = (role) =>
    fork(fileURLToPath(import.meta.url), [role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  console.log(`a monitor's ACK latency while another device is hostile (${seconds} s each):`);
  for (const hostile of ['none', 'hl7', 'astm']) {
    // The monitor and the hostile device are separate processes, as they are separate machines.
    const attacker = hostile === 'none' ? undefined : child('--attacker');
    attacker?.send({ ports, hostile });
    if (attacker) await once(attacker, 'message');
    const monitor = child('--monitor');
    // How long any ready I/O on the gateway waits for the event loop: what every device sees.
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    monitor.send({ ports });
    const [{ latencies }] = await once(monitor, 'message');
    loop.disable();
    attacker?.send('stop');
    const [hostileInputs] = attacker ? await once(attacker, 'message') : [0];
    latencies.sort((a, b) => a - b);
    console.log(
      `  hostile ${hostile.padEnd(4)}: ${latencies.length} ACKs, p50 ${percentile(latencies, 50).toFixed(2)} ms, ` +
        `p99 ${percentile(latencies, 99).toFixed(2)} ms, max ${latencies.at(-1)?.toFixed(2)} ms; gateway event-loop delay ` +
        `p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms; ${hostileInputs} hostile inputs sent`,
    );
  }
  for (const a of adapters) await a.stop();
}

/** The monitor's process: ORU^R01 messages one after the other for `seconds`, each ACK timed. */
async function monitor() {
  const [{ ports }] = await once(process, 'message');
  const observations = pcd01VitalSigns({ systolic: 120, diastolic: 80, mean: 93, spo2: 97, pulse: 72 });
  const sender = new MllpSenderSimulator({ port: ports.monitor, resend: false, ackTimeoutMs: 600_000 });
  await sender.connect();
  const latencies = [];
  const end = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < end; i++) {
    const message = oruR01Message({
      controlId: `M${i}`,
      patient: { mrn: 'MRN-1', name: 'BENCH^PATIENT' },
      observations,
    });
    const t0 = performance.now();
    await sender.send(message);
    latencies.push(performance.now() - t0);
  }
  await sender.close();
  process.send({ latencies }, () => process.disconnect());
}

/** The hostile device's process: pathological input at full speed, not waiting for answers, until told to stop. */
async function attacker() {
  const [{ ports, hostile }] = await once(process, 'message');
  const socket = connect({ host: '127.0.0.1', port: hostile === 'hl7' ? ports.hl7 : ports.astm });
  await once(socket, 'connect');
  socket.on('data', () => {});
  let running = true;
  process.once('message', () => {
    running = false;
  });
  const input =
    hostile === 'hl7'
      ? Buffer.concat([Buffer.from([0x0b]), Buffer.from(hl7Digits, 'latin1'), Buffer.from([0x1c, 0x0d])])
      : astmFrames(astmText(records));
  process.send('started');
  let sent = 0;
  while (running) {
    sent++;
    if (!socket.write(input)) await once(socket, 'drain');
    await new Promise((resolve) => setImmediate(resolve));
  }
  socket.destroy();
  process.send(sent, () => process.disconnect());
}

if (process.argv[2] === '--monitor') {
  await monitor();
} else if (process.argv[2] === '--attacker') {
  await attacker();
} else {
  await worstInputs();
  await gateway();
}
