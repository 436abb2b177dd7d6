// A real gateway (`attache run`, HL7 over MLLP, Debian's mosquitto with mutual TLS) whose data
// directory is a small tmpfs that its own cache fills. Once full the monitors get AR; `attache
// status` answers, the gateway restarts, and deleting a file lets readings in again by themselves;
// filled again (by a file and the
// cache), `attache sync` drains the cache to the broker and readings are acknowledged again.
// Every message acknowledged AA reaches the broker (or stays in the cache) exactly once. Measures
// full → drained → first AA again. Needs root to mount the tmpfs; skipped with the reason otherwise.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestPki,
  getFreePort,
  MllpSenderSimulator,
  oruR01Message,
  startMosquitto,
  subscribeTopic,
  uplinkSettings,
} from '@attache/devkit';
import t from 'tap';
import { checkCache, crashPatient, messageValue } from './helpers/crash-gateway.js';
import { seededRandom } from './helpers/seeded-random.js';
import { attache, GatewayProcess, recordsOf } from './helpers/stack.js';

const mib = 1024 * 1024;
const reserveBytes = 32 * mib;
const seed = Number(process.env.ATTACHE_CRASH_SEED ?? Date.now() % 1_000_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = (line: Record<string, unknown>) => line.msg === 'gateway started';

/** A monitor sending ~20 KB messages one at a time; after an AR it waits 100 ms and sends the same one again. */
class FillingMonitor {
  readonly acked: number[] = [];
  /** When each AA and AR arrived (ms since the epoch). */
  readonly aaAt: number[] = [];
  readonly arAt: number[] = [];
  readonly #sender: MllpSenderSimulator;
  readonly #padding: string;
  /** Pause after each AA, ms (0: send the next message at once). */
  paceMs = 0;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    port: number,
    rand: () => number,
  ) {
    this.#sender = new MllpSenderSimulator({ port, resend: true, ackTimeoutMs: 30_000 });
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    this.#padding = Array.from({ length: 20_000 }, () => letters[Math.floor(rand() * 26)]).join('');
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await this.#sender.close();
  }

  async #run(): Promise<void> {
    for (let n = 0; !this.#stopped; ) {
      const message = oruR01Message({
        controlId: `F${this.index}-${n}`,
        patient: crashPatient,
        observations: [
          {
            type: 'NM',
            code: 'SEQ^test sequence^LOCAL',
            path: '9.9.9.9',
            value: String(messageValue(this.index, n)),
          },
          { type: 'ST', code: 'NOTE^note^LOCAL', path: '9.9.9.10', value: this.#padding },
        ],
      });
      const { code } = await this.#sender.send(message);
      if (code === 'AA') {
        this.acked.push(n++);
        this.aaAt.push(Date.now());
        if (this.paceMs > 0) await sleep(this.paceMs);
      } else {
        this.arAt.push(Date.now());
        await sleep(100);
      }
    }
  }
}

function mountTmpfs(dir: string, sizeMb: number): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m,mode=0700`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

// Filling 56 MiB with HL7 readings takes ~40 s alone and over a minute beside other tests (CI runs
// two files at once): generous waits, and a file timeout above them.
/** Polls `done` every 50 ms until it holds; fails after `ms`. */
async function until(done: () => boolean, what: string, ms = 180_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

t.setTimeout(600_000);

t.test(
  'a gateway whose cache filled its disk answers, restarts, drains and takes readings again by itself',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-full-gw-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const mnt = join(dir, 'disk');
    await mkdir(mnt);
    if (!mountTmpfs(mnt, 160)) {
      await rmdir(mnt);
      t.comment('skipped: mounting a tmpfs needs root and mount rights');
      return;
    }
    t.teardown(() => execFileSync('umount', ['-l', mnt]));
    t.comment(`seed ${seed} (ATTACHE_CRASH_SEED=${seed} replays the message contents)`);
    const rand = seededRandom(seed);
    const pki = await createTestPki(join(dir, 'pki'), { thingName: 'gw-full-1' });
    const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
    t.teardown(() => broker.stop());
    const dataDir = join(mnt, 'data');
    const port = await getFreePort();
    const configPath = join(dir, 'config.json');
    const config = {
      version: 1,
      gateway: { id: 'gw-full-1', dataDir },
      log: { level: 'info' },
      cache: { commitIntervalMs: 2, diskReserveBytes: reserveBytes },
      devices: [
        {
          id: 'monitor-full',
          adapter: 'ethernet',
          endpoint: { mode: 'listen', host: '127.0.0.1', port, allow: ['127.0.0.1'] },
          format: { kind: 'hl7-mllp' },
        },
      ],
      // No client-side cap at AWS IoT Core's 512 KB/s: the local broker has no such quota.
      uplink: { ...uplinkSettings(broker, pki), connectTimeoutMs: 40_000, flowControl: 'none' },
    };
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const filler = join(mnt, 'old-export.bin');
    await writeFile(filler, Buffer.alloc(72 * mib, 7));
    const status = async () => {
      const { code, stdout, stderr } = await attache(['status', '--json', '--config', configPath]);
      t.equal(code, 0, `attache status answers ${stderr}`);
      return JSON.parse(stdout) as { cache: { full: boolean }; backlog: { records: number } };
    };

    let gateway = new GatewayProcess(configPath);
    t.teardown(async () => {
      gateway.child.kill('SIGKILL');
      await gateway.exited;
    });
    await gateway.waitForLog(started, 60_000);
    const monitors = Array.from({ length: 3 }, (_, i) => new FillingMonitor(i, port, rand));
    for (const m of monitors) m.start();
    const refusals = () => monitors.reduce((sum, m) => sum + m.arAt.length, 0);
    const acks = () => monitors.reduce((sum, m) => sum + m.acked.length, 0);

    await until(() => refusals() > 0, 'the disk fills and monitors get AR');
    t.comment(`full after ${acks()} messages acknowledged`);
    t.equal((await status()).cache.full, true, 'status says the cache is full');

    await gateway.stop();
    gateway = new GatewayProcess(configPath);
    await gateway.waitForLog(started, 60_000);
    t.pass('the gateway restarts on the full disk');

    const beforeDelete = acks();
    await rm(filler);
    await until(() => acks() > beforeDelete, 'readings acknowledged again after a file was deleted');
    t.pass('deleting a file lets readings in again, without a restart');
    const arBefore = refusals();
    // Someone's file takes most of the room again (the cache would take minutes on a loaded machine
    // to fill 72 MiB); the cache fills the rest.
    const { bavail, bsize } = await statfs(mnt);
    await writeFile(join(mnt, 'new-export.bin'), Buffer.alloc(Math.max(0, bavail * bsize - 8 * mib), 7));
    await until(() => refusals() > arBefore, 'the disk fills again');
    const fullAt = Date.now();

    const subscriber = await subscribeTopic({ broker, pki, topic: 'dt/attache/gw-full-1/telemetry' });
    t.teardown(() => subscriber.stop());
    // From now on each monitor sends a reading every 50 ms once accepted, as a bedside monitor would.
    for (const m of monitors) m.paceMs = 50;
    const syncAt = Date.now();
    const sync = await attache(['sync', '--config', configPath]);
    t.equal(sync.code, 0, `attache sync drains the full cache ${sync.stderr}`);
    const drainedAt = Date.now();
    const firstAa = () => Math.min(...monitors.flatMap((m) => m.aaAt.filter((at) => at > syncAt)));
    await until(() => Number.isFinite(firstAa()), 'a reading acknowledged again after the drain');
    t.comment(
      `disk-full recovery: full (AR) → sync started ${syncAt - fullAt} ms, sync took ${drainedAt - syncAt} ms, ` +
        `full → first AA again ${firstAa() - fullAt} ms (sync started → first AA ${firstAa() - syncAt} ms)`,
    );

    for (const m of monitors) await m.stop();
    await gateway.stop();
    // mosquitto_sub may still be printing what the broker delivered: wait until it stops missing any.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const uploaded = new Map<string, number>();
      for (const record of recordsOf(subscriber.messages)) {
        const observations = record.observations as { code: string; value: unknown }[];
        const value = Number(observations.find((o) => o.code === 'SEQ')?.value) - messageValue(0, 0);
        const key = `${Math.floor(value / 100_000)}:${value % 100_000}`;
        uploaded.set(key, (uploaded.get(key) ?? 0) + 1);
      }
      // Those acknowledged but not uploaded (after the drain) must be in the cache, once each.
      const notUploaded = monitors.map((m, i) => m.acked.filter((n) => !uploaded.has(`${i}:${n}`)));
      const left = await checkCache(join(dataDir, 'cache'), join(dataDir, 'keys', 'cache.key'), notUploaded);
      if (left.problems.length === 0 || Date.now() > deadline) {
        t.same(left.problems, [], 'every acknowledged message not uploaded is in the cache, and it decrypts');
        t.same(
          [...uploaded].filter(([, count]) => count > 1),
          [],
          'no message reached the broker twice',
        );
        t.ok(
          uploaded.size > 0,
          `${uploaded.size} uploaded, ${left.records} left, ${acks()} acknowledged in all`,
        );
        break;
      }
      await sleep(500);
    }
  },
);
