// The crash harness against a real gateway: `attache run` ingests HL7 over MLLP (the ethernet
// adapter, AA only after the synced write) from four senders that record what was acknowledged, and
// is killed with SIGKILL at random moments, sometimes while it is still starting. After each kill the
// cache is opened with the gateway's key and checked: every acknowledged message is there exactly
// once, each sender's in the order sent, and every value decrypts; then the gateway is restarted and
// the senders re-send what was in flight. At the end no file of the data directory may hold anything
// the senders sent in clear. ATTACHE_CRASH_KILLS sets the number of kills (default 20; `make soak`
// runs many more), ATTACHE_CRASH_SEED the random seed (printed, to replay a run's timing).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFreePort } from '@attache/devkit';
import t from 'tap';
import {
  checkCache,
  crashPatient,
  grepFiles,
  messageValue,
  RecordingMllpSender,
} from './helpers/crash-gateway.js';
import { seededRandom } from './helpers/seeded-random.js';
import { GatewayProcess } from './helpers/stack.js';

const kills = Number(process.env.ATTACHE_CRASH_KILLS ?? 20);
const seed = Number(process.env.ATTACHE_CRASH_SEED ?? Date.now() % 1_000_000);
const senderCount = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = (line: Record<string, unknown>) => line.msg === 'gateway started';

t.test(`a real gateway SIGKILLed ${kills} times loses no acknowledged HL7 message`, async (t) => {
  t.comment(`seed ${seed} (ATTACHE_CRASH_SEED=${seed} replays this run's timing)`);
  const rand = seededRandom(seed);
  const dir = await mkdtemp(join(tmpdir(), 'attache-crash-gw-'));
  const dataDir = join(dir, 'data');
  const cachePath = join(dataDir, 'cache');
  const keyPath = join(dataDir, 'keys', 'cache.key');
  const configPath = join(dir, 'config.json');
  const port = await getFreePort();
  const config = {
    version: 1,
    gateway: { id: 'gw-crash-1', dataDir },
    log: { level: 'info' },
    cache: { commitIntervalMs: 2 },
    devices: [
      {
        id: 'monitor-crash',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
    ],
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const senders = Array.from({ length: senderCount }, (_, i) => new RecordingMllpSender(i, port));
  let gateway = new GatewayProcess(configPath);
  t.teardown(async () => {
    gateway.child.kill('SIGKILL');
    await gateway.exited;
    await Promise.all(senders.map((s) => s.abort()));
    await rm(dir, { recursive: true, force: true });
  });
  await gateway.waitForLog(started, 60_000);
  for (const sender of senders) sender.start();

  let failures = 0;
  let largest = 0;
  for (let round = 1; round <= kills; round++) {
    // One kill in five while the gateway starts (opening or recovering its cache), the others
    // while it ingests, within 300 ms of being ready.
    if (rand() < 0.2) await sleep(Math.floor(rand() * 400));
    else {
      await gateway.waitForLog(started, 60_000);
      await sleep(Math.floor(rand() * 300));
    }
    gateway.child.kill('SIGKILL');
    await gateway.exited;
    if (gateway.child.signalCode !== 'SIGKILL') {
      throw new Error(`round ${round}: the gateway exited by itself (${gateway.child.exitCode})`);
    }
    // Taken once the gateway is dead: every AA in it was sent after the write that it acknowledges.
    const acked = senders.map((s) => [...s.acked]);
    const { problems, records } = await checkCache(cachePath, keyPath, acked);
    largest = Math.max(largest, records);
    if (problems.length > 0) {
      failures++;
      t.fail(`round ${round}: ${problems.join('; ')}`);
    }
    gateway = new GatewayProcess(configPath);
  }
  await gateway.waitForLog(started, 60_000);
  // Each sender gets one more message through the last gateway, then stops.
  const before = senders.map((s) => s.acked.length);
  const deadline = Date.now() + 30_000;
  while (senders.some((s, i) => s.acked.length <= (before[i] ?? 0)) && Date.now() < deadline) await sleep(50);
  await Promise.all(senders.map((s) => s.stop()));
  await gateway.stop();

  const acked = senders.map((s) => s.acked);
  const total = acked.reduce((sum, a) => sum + a.length, 0);
  const final = await checkCache(cachePath, keyPath, acked);
  t.same(
    final.problems,
    [],
    'after the last restart and a clean stop, every acknowledged message is there once',
  );
  t.equal(failures, 0, `after each of ${kills} kills every acknowledged message was there (${total} in all)`);
  t.same(
    senders.flatMap((s) => s.rejected),
    [],
    'every message was acknowledged AA (none AE/AR)',
  );
  t.ok(total > kills, `the gateway acknowledged messages between kills (${final.records} records stored)`);
  const interrupted = senders.reduce((sum, s) => sum + s.interrupted, 0);
  t.comment(`${interrupted} messages were cut by a kill and sent again; largest cache ${largest} records`);
  if (kills >= 5) t.ok(interrupted > 0, 'some kills cut a message before its ACK, and it was sent again');

  const needles = [crashPatient.mrn, 'ZELLWEGER', 'PERPETUA', crashPatient.birthDate, 'monitor-crash'];
  acked.forEach((ns, sender) => {
    for (const n of ns.slice(-10)) needles.push(String(messageValue(sender, n)));
  });
  const found = await grepFiles(dataDir, needles);
  t.same(found, [], `none of ${needles.length} values the senders sent is in any file of the data directory`);
});
