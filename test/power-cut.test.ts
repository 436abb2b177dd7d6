// Power cuts, not process kills: the gateway's data directory lives on a FUSE filesystem
// (test/fixtures/powercut-fs.py) that, when its power is cut, keeps only what was made durable
// (fsynced file data, fsynced directory entries), as a disk does and a killed process's page cache
// does not show. A real `attache run` ingests HL7 from four senders that record each AA, and an ASTM
// analyzer over a serial pty that records each message whose frames were all ACKed; the power
// is cut at random moments of ingest, of a drain (`attache sync` to mosquitto) and of a key rotation
// (`attache cache rotate-key`), and config-update jobs are applied and rolled back. After each power-on: every acknowledged message is in the cache
// exactly once or was uploaded, every value decrypts, the key file loads, and the gateway starts.
// ATTACHE_POWER_CUTS sets the number of cuts (default 6; `make soak` runs 200), ATTACHE_CRASH_SEED
// the seed (printed, to replay a run). Needs root, /dev/fuse and python3-pyfuse3; skipped otherwise.
import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileStore, loadOrCreateKeyring } from '@attache/cache';
import { mkdirDurably, validateConfig, writeDurably } from '@attache/core';
import {
  createTestPki,
  getFreePort,
  openPtyPair,
  startMosquitto,
  subscribeTopic,
  type TopicSubscriber,
  uplinkSettings,
} from '@attache/devkit';
import { JobStateStore } from '@attache/jobs';
import t from 'tap';
import { AstmLoop, astmValue, readCache } from './helpers/adapter-crash.js';
import { checkCache, messageValue, RecordingMllpSender } from './helpers/crash-gateway.js';
import { PowerCutDisk, powerCutUnavailable } from './helpers/power-cut.js';
import { seededRandom } from './helpers/seeded-random.js';
import { bin, recordsOf } from './helpers/stack.js';

const filesWriter = fileURLToPath(new URL('./fixtures/powercut-files.mjs', import.meta.url));
const configWorker = fileURLToPath(new URL('./fixtures/powercut-config.mjs', import.meta.url));

const cuts = Number(process.env.ATTACHE_POWER_CUTS ?? 6);
const seed = Number(process.env.ATTACHE_CRASH_SEED ?? Date.now() % 1_000_000);
const senderCount = 4;
const gatewayId = 'gw-power-1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Moment = 'start' | 'ingest' | 'drain' | 'rotate';

/** An `attache` process in its own process group, so a power cut takes its window worker too. */
class AttacheProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #out = '';

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [bin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#out += chunk;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#out += chunk;
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get output(): string {
    return this.#out;
  }

  /** Resolves once `text` was printed; rejects when the process ends first or after `ms`. */
  async waitFor(text: string, ms = 60_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.#out.includes(text)) {
      if (this.child.exitCode !== null)
        throw new Error(`exited ${this.child.exitCode}: ${this.#out.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`"${text}" not printed within ${ms} ms`);
      await sleep(20);
    }
  }

  /** The power cut, for this process and its children. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(-(this.child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited;
  }
}

/** Uploaded messages as `sender:n`, counted. */
function uploadedOf(subscriber: TopicSubscriber): Map<string, number> {
  const uploaded = new Map<string, number>();
  for (const record of recordsOf(subscriber.messages)) {
    const observations = record.observations as { code: string; value: unknown }[];
    const value = Number(observations.find((o) => o.code === 'SEQ')?.value) - messageValue(0, 0);
    const key = `${Math.floor(value / 100_000)}:${value % 100_000}`;
    uploaded.set(key, (uploaded.get(key) ?? 0) + 1);
  }
  return uploaded;
}

/** The first observation's value of every uploaded record of `deviceId`. */
function uploadedValues(subscriber: TopicSubscriber, deviceId: string): Set<number> {
  return new Set(
    recordsOf(subscriber.messages)
      .filter((r) => r.deviceId === deviceId)
      .map((r) => Number((r.observations as { value: unknown }[])[0]?.value)),
  );
}

const unavailable = powerCutUnavailable();

t.test(`${cuts} power cuts lose no acknowledged message and the gateway starts after each`, async (t) => {
  if (unavailable) {
    t.comment(`skipped: ${unavailable}`);
    return;
  }
  t.comment(`seed ${seed} (ATTACHE_CRASH_SEED=${seed} replays this run's timing)`);
  const rand = seededRandom(seed);
  const dir = await mkdtemp(join(tmpdir(), 'attache-power-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const disk = new PowerCutDisk(dir);
  t.teardown(() => disk.stop());
  await disk.on();
  const pki = await createTestPki(join(dir, 'pki'), { thingName: gatewayId });
  const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
  t.teardown(() => broker.stop());
  const subscriber = await subscribeTopic({ broker, pki, topic: `dt/attache/${gatewayId}/telemetry` });
  t.teardown(() => subscriber.stop());
  const dataDir = join(disk.mountpoint, 'data');
  const cachePath = join(dataDir, 'cache');
  const keyPath = join(dataDir, 'keys', 'cache.key');
  const port = await getFreePort();
  const astmPty = await openPtyPair(join(dir, 'astm'));
  t.teardown(() => astmPty.close());
  const configPath = join(dir, 'config.json');
  const config = {
    version: 1,
    gateway: { id: gatewayId, dataDir },
    log: { level: 'info' },
    // The reserve is tested on a real full disk (test/disk-full-gateway.test.ts); this disk has no size.
    cache: { commitIntervalMs: 2, diskReserveBytes: 0 },
    devices: [
      {
        id: 'monitor-power',
        adapter: 'ethernet',
        endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
        format: { kind: 'hl7-mllp' },
      },
      {
        id: 'hema-power',
        adapter: 'rs232',
        port: { path: astmPty.gatewayPath, reconnectMs: 100 },
        format: { kind: 'astm', receiverTimeoutMs: 2000 },
      },
    ],
    uplink: { ...uplinkSettings(broker, pki), connectTimeoutMs: 40_000, flowControl: 'none' },
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const senders = Array.from({ length: senderCount }, (_, i) => new RecordingMllpSender(i, port));
  const running: AttacheProcess[] = [];
  const run = (...args: string[]) => {
    const p = new AttacheProcess([...args, '--config', configPath]);
    running.push(p);
    return p;
  };
  t.teardown(async () => {
    for (const p of running) await p.kill();
    await Promise.all(senders.map((s) => s.abort()));
  });
  let gateway = run('run');
  await gateway.waitFor('"gateway started"');
  for (const sender of senders) sender.start();
  const analyzer = new AstmLoop(astmPty.devicePath);
  await analyzer.start();
  t.teardown(() => analyzer.stop());

  const moments = new Map<Moment, number>();
  let failures = 0;
  for (let round = 1; round <= cuts; round++) {
    const r = rand();
    const moment: Moment = r < 0.15 ? 'start' : r < 0.55 ? 'ingest' : r < 0.8 ? 'drain' : 'rotate';
    moments.set(moment, (moments.get(moment) ?? 0) + 1);
    if (moment !== 'start') await gateway.waitFor('"gateway started"');
    if (moment === 'start') await sleep(Math.floor(rand() * 600));
    else if (moment === 'ingest') await sleep(Math.floor(rand() * 500));
    else if (moment === 'drain') {
      await sleep(100 + Math.floor(rand() * 300));
      run('sync');
      await sleep(Math.floor(rand() * 400));
    } else {
      await sleep(100 + Math.floor(rand() * 300));
      process.kill(gateway.child.pid as number, 'SIGTERM');
      await gateway.exited;
      run('cache', 'rotate-key');
      await sleep(Math.floor(rand() * 150));
    }
    for (const p of running) await p.kill();
    running.length = 0;
    await disk.cut();
    // Taken once everything is dead: every AA in it was sent after the write it acknowledges.
    const acked = senders.map((s) => [...s.acked]);
    const astmSent = [...analyzer.sent];
    await disk.on();
    const problems = [...(await checkAfterCut(acked)), ...(await checkAstm(astmSent))];
    if (problems.length > 0) {
      failures++;
      t.fail(`cut ${round} (${moment}): ${problems.join('; ')}`);
    }
    gateway = run('run');
  }
  await gateway.waitFor('"gateway started"');
  // The cuts' windows are short: on a busy machine the analyzer may not have finished a message
  // between them. The gateway that runs now takes one before the end, whatever the machine.
  await analyzer.whenSent(analyzer.sent.length + 1);
  await Promise.all(senders.map((s) => s.stop()));
  await gateway.kill();
  t.equal(failures, 0, `after each of ${cuts} power cuts every acknowledged message was there or uploaded`);
  const total = senders.reduce((sum, s) => sum + s.acked.length, 0);
  t.ok(total > cuts, `messages were acknowledged between cuts (${total} in all)`);
  t.same(
    senders.flatMap((s) => s.rejected),
    [],
    'every message was acknowledged AA',
  );
  t.ok(analyzer.sent.length > 0, `ASTM messages were acknowledged over serial (${analyzer.sent.length})`);
  t.comment(`cuts by moment: ${JSON.stringify(Object.fromEntries(moments))}`);

  /** What is wrong with the analyzer's messages after a power-on: ACKed but neither cached nor uploaded. */
  async function checkAstm(sent: number[]): Promise<string[]> {
    for (let attempt = 0; ; attempt++) {
      const uploaded = uploadedValues(subscriber, 'hema-power');
      const { records } = await readCache(cachePath, keyPath);
      const cached = records.filter((r) => r.deviceId === 'hema-power').map((r) => Number(r.value));
      const problems: string[] = [];
      const lost = sent.filter((n) => !cached.includes(astmValue(n)) && !uploaded.has(astmValue(n)));
      if (lost.length > 0) problems.push(`ASTM: ${lost.length} acknowledged messages lost, first ${lost[0]}`);
      if (new Set(cached).size !== cached.length) problems.push('ASTM: a message is cached twice');
      if (problems.length === 0 || attempt >= 20) return problems;
      await sleep(250);
    }
  }

  /** What is wrong after a power-on: lost messages, a key file that does not load. */
  async function checkAfterCut(acked: number[][]): Promise<string[]> {
    const problems: string[] = [];
    if (acked.some((a) => a.length > 0)) {
      // Read-only first: loadOrCreateKeyring would make a new key where the old one was lost.
      await access(keyPath)
        .then(() => loadOrCreateKeyring(keyPath))
        .catch((err: unknown) => problems.push(`key file: ${String(err)}`));
    }
    // mosquitto_sub may still be printing what the broker delivered: allow it a moment.
    for (let attempt = 0; ; attempt++) {
      const uploaded = uploadedOf(subscriber);
      const notUploaded = acked.map((ns, i) => ns.filter((n) => !uploaded.has(`${i}:${n}`)));
      const check = await checkCache(cachePath, keyPath, notUploaded, 'monitor-power');
      if (check.problems.length === 0 || attempt >= 20) return [...problems, ...check.problems];
      await sleep(250);
    }
  }
});

t.test(`file delivery: ${cuts} power cuts leave every stored file whole or absent`, async (t) => {
  if (unavailable) {
    t.comment(`skipped: ${unavailable}`);
    return;
  }
  const rand = seededRandom(seed + 1);
  const dir = await mkdtemp(join(tmpdir(), 'attache-power-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const disk = new PowerCutDisk(dir);
  t.teardown(() => disk.stop());
  await disk.on();
  const storePath = join(disk.mountpoint, 'data', 'files');
  const stored = new Map<number, string>();
  const whole = new Set<string>();
  let next = 0;
  let failures = 0;
  for (let round = 1; round <= cuts; round++) {
    const writer = spawn(process.execPath, [filesWriter, storePath, String(next)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    writer.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    const exited = new Promise((resolve) => writer.once('exit', resolve));
    // One cut in five while the store opens (cleaning up after the last cut), the others while it writes.
    if (rand() < 0.2) await sleep(Math.floor(rand() * 300));
    else {
      for (
        let waited = 0;
        !out.includes('open') && writer.exitCode === null && waited < 30_000;
        waited += 20
      ) {
        await sleep(20);
      }
      await sleep(Math.floor(rand() * 800));
    }
    writer.kill('SIGKILL');
    await exited;
    await disk.cut();
    // Complete lines only: one cut by the kill is not an acknowledgement.
    for (const line of out.split('\n').slice(0, -1)) {
      const [kind, n, sha] = line.split(' ');
      if (kind !== 'ok') continue;
      stored.set(Number(n), sha as string);
      next = Math.max(next, Number(n) + 1);
    }
    await disk.on();
    const files = new FileStore({ path: storePath });
    const problems: string[] = [];
    await files.open();
    const listed = new Set((await files.list()).map((f) => f.sha256));
    // A file found whole after one cut is never written again: read each new one once (a soak
    // stores thousands).
    for (const sha of [...listed].filter((sha) => !whole.has(sha))) {
      whole.add(sha);
      await files
        .read(sha)
        .catch((err: unknown) => problems.push(`${sha.slice(0, 8)} is not whole: ${String(err)}`));
    }
    const lost = [...stored].filter(([, sha]) => !listed.has(sha));
    if (lost.length > 0) problems.push(`${lost.length} stored files are gone, first file ${lost[0]?.[0]}`);
    if (problems.length > 0) {
      failures++;
      t.fail(`cut ${round}: ${problems.join('; ')}`);
    }
  }
  t.equal(failures, 0, `after each of ${cuts} cuts every stored file was there and whole`);
  t.ok(stored.size > 0, `files were stored between cuts (${stored.size})`);
});

t.test(
  `config updates: ${cuts} power cuts leave a whole config, the last applied or the one in flight`,
  async (t) => {
    if (unavailable) {
      t.comment(`skipped: ${unavailable}`);
      return;
    }
    const rand = seededRandom(seed + 2);
    const dir = await mkdtemp(join(tmpdir(), 'attache-power-config-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const disk = new PowerCutDisk(dir);
    t.teardown(() => disk.stop());
    await disk.on();
    const root = join(disk.mountpoint, 'etc');
    await mkdirDurably(root);
    const generation = (port: number) => ({
      version: 1,
      gateway: { id: 'gw-power-config', dataDir: join(root, 'data') },
      devices: [
        {
          id: 'monitor',
          adapter: 'ethernet',
          endpoint: { mode: 'listen', port, allow: ['10.0.0.0/8'] },
          format: { kind: 'hl7-mllp' },
        },
      ],
    });
    await writeDurably(join(root, 'config.json'), JSON.stringify(generation(10_000)));
    let inPlace = 10_000;
    let next = 1;
    let done = 0;
    let rolledBack = 0;
    const problems: string[] = [];
    const wholeConfig = async (file: string): Promise<number | undefined> => {
      try {
        const config = validateConfig(JSON.parse(await readFile(join(root, file), 'utf8')));
        const [device] = config.devices;
        return device?.adapter === 'ethernet' ? device.endpoint.port : undefined;
      } catch (err) {
        problems.push(`${file} is not a whole valid config: ${String(err)}`);
        return undefined;
      }
    };
    for (let round = 1; round <= cuts; round++) {
      const worker = spawn(process.execPath, [configWorker, root, String(next)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      worker.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
      });
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      for (
        let waited = 0;
        !out.includes('open') && worker.exitCode === null && waited < 30_000;
        waited += 20
      ) {
        await sleep(20);
      }
      await sleep(Math.floor(rand() * 600));
      worker.kill('SIGKILL');
      await exited;
      await disk.cut();
      // Complete lines only: each says job n ended with `port` in place.
      for (const line of out.split('\n').slice(1, -1)) {
        const [, n, outcome, port] = line.split(' ');
        const expected = outcome === 'applied' ? 10_000 + Number(n) : inPlace;
        if (Number(port) !== expected)
          problems.push(`job ${n} ${outcome} left port ${port}, not ${expected}`);
        inPlace = Number(port);
        next = Number(n) + 1;
        done++;
        if (outcome === 'rolled-back') rolledBack++;
      }
      await disk.on();
      const port = await wholeConfig('config.json');
      // Job `next` was in flight: its config may be in place (a restart on it was under way).
      if (port !== undefined && port !== inPlace && port !== 10_000 + next)
        problems.push(`after the cut the config holds port ${port}: neither ${inPlace} nor job ${next}'s`);
      if (
        await access(join(root, 'config.json.prev')).then(
          () => true,
          () => false,
        )
      )
        await wholeConfig('config.json.prev');
      await new JobStateStore(join(root, 'jobs.json'))
        .get(`config-${next}`, 1)
        .catch((err: unknown) => problems.push(`the jobs state is unreadable: ${String(err)}`));
      if (problems.length > 0) t.fail(`cut ${round}: ${problems.splice(0).join('; ')}`);
    }
    t.ok(done > 0, `config jobs completed between cuts (${done}, ${rolledBack} rolled back)`);
    t.pass(`after each of ${cuts} cuts the config was whole: the last applied or the one in flight`);
  },
);
