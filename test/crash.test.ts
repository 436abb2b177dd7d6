// The crash harness: a process appending to a LevelCache is killed with SIGKILL at random moments,
// many times; after each kill, every record whose append() had resolved (the writer printed it only
// then) must be in the cache exactly once, in seq order, and decrypt. Then no file of the database
// may hold anything the writer sent in clear. ATTACHE_CRASH_KILLS sets the number of kills (default
// 30; `make soak` runs many more), ATTACHE_CRASH_SEED the random seed (printed, to replay a run).
// test/crash-gateway.test.ts does the same to a real gateway fed over HL7; this one loads the cache
// far harder (groups of up to 200 records), so most kills land mid-group.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LevelCache, loadOrCreateKeyring } from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import t from 'tap';
import { seededRandom } from './helpers/seeded-random.js';

const writer = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const kills = Number(process.env.ATTACHE_CRASH_KILLS ?? 30);
const seed = Number(process.env.ATTACHE_CRASH_SEED ?? Date.now() % 1_000_000);
const patientId = 'MRN-QX7-448812';
const valueBase = 73_000_000;

interface Run {
  proc: ChildProcess;
  /** seq -> n of every `ok` line (complete lines only: one cut by the kill is not an acknowledgement). */
  acked: Map<number, number>;
  opened: Promise<void>;
  exited: Promise<NodeJS.Signals | null>;
}

function startWriter(path: string, keyPath: string, firstN: number): Run {
  const proc = spawn(process.execPath, [writer, path, keyPath, String(firstN)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked = new Map<number, number>();
  let partial = '';
  let markOpen: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    markOpen = resolve;
  });
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [kind, seq, n] = line.split(' ');
      if (kind === 'open') markOpen();
      if (kind === 'ok') acked.set(Number(seq), Number(n));
    }
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    proc.on('exit', (_code, signal) => resolve(signal)),
  );
  void exited.then(() => markOpen());
  return { proc, acked, opened, exited };
}

async function readAll(cache: LevelCache): Promise<AttacheRecord[]> {
  const out: AttacheRecord[] = [];
  for (;;) {
    const page = await cache.read({ afterSeq: out.at(-1)?.seq ?? 0, limit: 2000, maxBytes: 4e6 });
    if (page.length === 0) return out;
    for (const { seq, json } of page) out.push({ ...(JSON.parse(json) as AttacheRecord), seq });
  }
}

t.test(`${kills} SIGKILLs at random moments lose no acknowledged record`, async (t) => {
  t.comment(`seed ${seed} (ATTACHE_CRASH_SEED=${seed} replays this run)`);
  const rand = seededRandom(seed);
  const dir = await mkdtemp(join(tmpdir(), 'attache-crash-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'cache');
  const keyPath = join(dir, 'keys', 'cache.key');
  const keyring = await loadOrCreateKeyring(keyPath);
  const acked = new Map<number, number>(); // seq -> n, over all runs
  let nextN = 0;
  let failures = 0;
  for (let round = 1; round <= kills; round++) {
    const run = startWriter(path, keyPath, nextN);
    t.teardown(() => {
      if (run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGKILL');
    });
    await run.opened;
    // Sometimes at once (mid first group), mostly within the next 300 ms.
    await new Promise((r) => setTimeout(r, rand() < 0.15 ? 0 : Math.floor(rand() * 300)));
    run.proc.kill('SIGKILL');
    const signal = await run.exited;
    if (signal !== 'SIGKILL') throw new Error(`round ${round}: the writer exited by itself (${signal})`);
    for (const [seq, n] of run.acked) acked.set(seq, n);

    const cache = new LevelCache({ path, keyring });
    await cache.open();
    const stored = await readAll(cache);
    const quarantined = await cache.quarantineCount();
    await cache.close();
    const problems = check(stored, acked, quarantined);
    if (problems.length > 0) {
      failures++;
      t.fail(`round ${round}: ${problems.join('; ')}`);
    }
    nextN = Math.max(nextN, ...stored.map((r) => r.clock.monotonicMs + 1), ...run.acked.values()) + 1;
  }
  t.equal(
    failures,
    0,
    `after each of ${kills} kills all acknowledged records were there (${acked.size} in all)`,
  );
  t.ok(acked.size > kills, 'the writer acknowledged records between kills');

  const needles = [patientId, 'spo2-crash-z9', 'gw-crash', 'MDC_PULS_OXIM_SAT_O2', '2026-11-01T'];
  for (const n of [...acked.values()].slice(0, 50)) needles.push(String(valueBase + n));
  const found = await grepDir(path, needles);
  t.same(found, [], `none of ${needles.length} values the writer sent is in any database file, in clear`);
});

/** What is wrong with the stored records, given those acknowledged: [] when nothing. */
function check(stored: AttacheRecord[], acked: Map<number, number>, quarantined: number): string[] {
  const problems: string[] = [];
  if (quarantined > 0) problems.push(`${quarantined} values failed authentication`);
  const bySeq = new Map<number, AttacheRecord>();
  const seenN = new Set<number>();
  let previous = 0;
  for (const record of stored) {
    if (record.seq <= previous) problems.push(`seq ${record.seq} after ${previous}`);
    previous = record.seq;
    const n = record.clock.monotonicMs;
    if (seenN.has(n)) problems.push(`reading ${n} stored twice`);
    seenN.add(n);
    if (record.observations[0]?.value !== valueBase + n) problems.push(`seq ${record.seq} is not intact`);
    bySeq.set(record.seq, record);
  }
  const lost = [...acked].filter(([seq, n]) => bySeq.get(seq)?.clock.monotonicMs !== n);
  if (lost.length > 0) problems.push(`${lost.length} acknowledged records lost, first seq ${lost[0]?.[0]}`);
  return problems;
}

/** The needles found (as `needle in file`) in any file under `dir`, as UTF-8 bytes. */
async function grepDir(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir)) {
    const content = await readFile(join(dir, name));
    for (const needle of needles) if (content.includes(needle)) found.push(`${needle} in ${name}`);
  }
  return found;
}
