// One HL7 connection's CPU per message in a hot loop, in one process, without the socket: the bench's
// ORU^R01 (bench/hl7.mjs) handed to an Hl7Session whose sink is the gateway's own (`readingSink`:
// normalizer, patient token, idempotency key, schema check, AES-GCM seal, LevelCache synced group
// commit), one message at a time, each after the previous one's ACK, as one monitor sends them.
// `node bench/hl7-hot.mjs [mode] [messages] [warmup]`: mode `session` (default: the whole path up to
// the ACK) or `parse` (`interpretHl7` alone). Prints µs per message (wall and CPU). The cache lives
// in HL7_HOT_DIR (default /dev/shm: the disk is not what is measured here). For instruction counts,
// which hold on a busy machine, run it under `valgrind --tool=callgrind` with two message counts and
// take the difference over the difference of messages (the start-up cancels out).
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import { nullLogger, systemClock, validateConfig } from '@attache/core';
import { oruR01Message, pcd01VitalSigns } from '@attache/devkit';
import { encodeMllp, Hl7Driver, interpretHl7 } from '@attache/hl7';
import { readingSink } from '../packages/gateway/dist/reading-sink.js';

const [mode = 'session', count = '20000', warm = '3000'] = process.argv.slice(2);
const observations = pcd01VitalSigns({ systolic: 120, diastolic: 80, mean: 93, spo2: 97, pulse: 72 });
// One template; each message is a copy with its own control id (an identical message would be a
// duplicate, stored once), written in place: the same few bytes of work per message on both sides of an A/B.
const template = encodeMllp(
  oruR01Message({
    controlId: 'C0-00000000',
    patient: { mrn: 'MRN-0', name: 'BENCH^PATIENT' },
    observations,
  }),
);
const idAt = [];
for (let at = template.indexOf('C0-00000000'); at !== -1; at = template.indexOf('C0-00000000', at + 1))
  idAt.push(at + 3);
function frame(i) {
  const copy = Buffer.from(template);
  const digits = String(i).padStart(8, '0');
  for (const at of idAt) copy.write(digits, at, 'latin1');
  return copy;
}
const total = Number(count) + Number(warm);

const dir = await mkdtemp(join(process.env.HL7_HOT_DIR ?? '/dev/shm', 'attache-hl7-hot-'));
try {
  const config = validateConfig({
    version: 1,
    gateway: { id: 'gw-bench', dataDir: join(dir, 'data') },
    devices: [
      {
        id: 'monitors',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '127.0.0.1', port: 2575, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
    ],
  });
  const { format } = config.devices[0];
  let t0 = 0;
  let cpu0;
  if (mode === 'parse') {
    let kept = 0;
    for (let i = 0; i < total; i++) {
      if (i === Number(warm)) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
      const f = frame(i);
      if (
        interpretHl7(f.subarray(1, f.length - 2), { versions: format.versions, freeText: format.freeText })
          .kind === 'reading'
      )
        kept++;
    }
    if (kept !== total) throw new Error(`${total - kept} messages not read`);
  } else {
    const cache = new LevelCache({
      path: join(dir, 'cache'),
      keyring: await loadOrCreateKeyring(join(dir, 'keys', 'cache.key')),
      logger: nullLogger,
    });
    await cache.open();
    const sink = readingSink(config, cache, nullLogger);
    let acked;
    const link = {
      name: 'hot-loop',
      open: true,
      write: (bytes) => {
        if (bytes[8] === undefined || !bytes.includes('MSA|AA')) throw new Error('not an AA');
        acked();
        return true;
      },
      pause() {},
      resume() {},
      close() {},
    };
    const count = () => {};
    const report = {
      counts: { frames: 0, stored: 0, malformed: 0, refused: 0 },
      log: nullLogger,
      frame: count,
      stored: count,
      malformed: (err) => {
        throw err;
      },
      refused: (err) => {
        throw err;
      },
    };
    const session = new Hl7Driver({ format, adapter: 'ethernet' }).open(link, {
      deviceId: 'monitors',
      sink,
      refusing: () => false,
      report,
      clock: systemClock,
    });
    for (let i = 0; i < total; i++) {
      if (i === Number(warm)) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }
      const ack = new Promise((resolve) => {
        acked = resolve;
      });
      session.receive(frame(i));
      await ack;
    }
    await cache.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const n = Number(count);
  console.log(
    `${mode}: ${n} messages, ${((seconds * 1e6) / n).toFixed(1)} µs/msg wall, ` +
      `${((cpu.user + cpu.system) / n).toFixed(1)} µs/msg CPU (user ${(cpu.user / n).toFixed(1)})`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
