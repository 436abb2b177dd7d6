// Provisioning by claim: for BENCH_RUNS boxes (default 5), each a real `attache run` holding only the
// fleet's claim, the time from its first window opening to its first upload as the new thing,
// against the Fleet Provisioning emulator on the local mosquitto (mutual TLS). The TLS + MQTT
// connects (one with the claim, one as the new thing) are reported apart, as is the rest
// (key pair, CSR, CreateCertificateFromCsr, RegisterThing, durable writes, the upload). Also the
// window process's RSS while it provisions (sampled every 20 ms, and its VmHWM), next to an
// ordinary window's. Run with TypeScript support for the emulator:
//   node --import @tapjs/typescript/import bench/provisioning.mjs
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { FleetWorld } from '../test/helpers/fleet-world.ts';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Samples the RSS of `pid`'s children (the window process) until `done` settles. */
async function sampleWindowRss(pid, done) {
  let peakRss = 0;
  let hwm = 0;
  let finished = false;
  done.finally(() => {
    finished = true;
  });
  while (!finished) {
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    for (const child of children.split(/\s+/).filter(Boolean)) {
      const status = await readFile(`/proc/${child}/status`, 'utf8').catch(() => '');
      const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
      peakRss = Math.max(peakRss, kb('VmRSS'));
      hwm = Math.max(hwm, kb('VmHWM'));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { peakRssMb: peakRss / 1024, hwmMb: hwm / 1024 };
}

/** The window's log lines by message, with their pino `time`. */
function at(logs, predicate) {
  return logs.find(predicate)?.time;
}

const cleanups = [];
const world = await FleetWorld.start({ teardown: (fn) => cleanups.push(fn) });
const results = [];
try {
  for (let i = 0; i < runs; i++) {
    const box = await world.box(`b${String(i).padStart(15, '0')}`);
    const gateway = box.start();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    await box.device.sendReading();
    await box.backlogUntil(1);
    const telemetry = await world.subscribe(box.thingName);
    const sync = box.run('sync', '--json');
    const rss = sampleWindowRss(gateway.child.pid, sync);
    const [batch] = await telemetry.waitFor(1, 60_000);
    const uploadedAt = Date.now();
    const result = JSON.parse((await sync).stdout);
    if (result.outcome !== 'drained' || !batch) throw new Error(`window ${JSON.stringify(result)}`);
    const logs = gateway.logs;
    const opened = at(logs, (l) => l.msg === 'window opened');
    const claimConnecting = at(logs, (l) => l.msg === 'connecting' && l.credential === 'claim');
    const claimConnected = at(logs, (l) => l.msg === 'connected' && l.credential === 'claim');
    const provisioned = at(logs, (l) => l.msg === 'provisioned by claim');
    const ownConnecting = logs.find(
      (l) => l.msg === 'connecting' && !l.credential && l.time > provisioned,
    )?.time;
    const ownConnected = logs.find(
      (l) => l.msg === 'connected' && !l.credential && l.time > provisioned,
    )?.time;
    const connects = claimConnected - claimConnecting + (ownConnected - ownConnecting);
    const memory = await rss;
    // An ordinary window of the same box, for comparison.
    await box.device.sendReading();
    await box.backlogUntil(1);
    const second = box.run('sync', '--json');
    const ordinary = await sampleWindowRss(gateway.child.pid, second);
    await second;
    results.push({
      total: uploadedAt - opened,
      provisioning: provisioned - opened,
      connects,
      rest: uploadedAt - opened - connects,
      memory,
      ordinary,
    });
    await gateway.stop();
  }
} finally {
  for (const fn of cleanups.reverse()) await fn();
}

const pick = (key) => results.map((r) => r[key]);
console.log(`provisioning by claim, ${runs} boxes, load average ${loadavg()[0].toFixed(1)}:`);
console.log(
  `  first window opened -> first upload as the new thing: median ${fmt(median(pick('total')))} (min ${fmt(Math.min(...pick('total')))}, max ${fmt(Math.max(...pick('total')))})`,
);
console.log(
  `    of which provisioning (key, CSR, certificate, registration, durable writes): median ${fmt(median(pick('provisioning')))}`,
);
console.log(`    TLS + MQTT connects (claim, then the new thing): median ${fmt(median(pick('connects')))}`);
console.log(`    without the connects: median ${fmt(median(pick('rest')))} (target <= 10 s)`);
const peak = (list, key) => Math.max(...list.map((m) => m[key])).toFixed(1);
const memories = results.map((r) => r.memory);
const ordinaries = results.map((r) => r.ordinary);
console.log(
  `  window process while provisioning: RSS peak ${peak(memories, 'peakRssMb')} MB sampled, VmHWM ${peak(memories, 'hwmMb')} MB; an ordinary window: ${peak(ordinaries, 'peakRssMb')} MB, VmHWM ${peak(ordinaries, 'hwmMb')} MB`,
);
// The SDK's native clients can hold the event loop after close.
process.exit(0);
