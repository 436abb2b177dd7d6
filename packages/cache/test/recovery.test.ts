import { type ChildProcess, execFileSync, type StdioOptions, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LevelCache } from '@attache/cache';
import type { AttacheRecord } from '@attache/core';
import t, { type Test } from 'tap';
import { draft, recordingLogger, tempKeyring } from './fixtures/helpers.js';

const fixture = fileURLToPath(new URL('./fixtures/appender.mjs', import.meta.url));

interface Appender {
  proc: ChildProcess;
  /** Complete stdout lines so far (a line cut by SIGKILL is not one). */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(done: (lines: string[]) => boolean): Promise<void>;
}

interface AppenderOptions {
  /** Run under a soft file size limit (`ulimit -S -f`), in blocks. */
  fileSizeBlocks?: number;
  /** After the first failure, wait for a line on stdin and append again. */
  resume?: boolean;
}

/**
 * Starts test/fixtures/appender.mjs on `path`, with the key file at `keyPath`. Node ignores SIGXFSZ, so under a file size limit a
 * write past it fails with EFBIG, as on a full disk; tap's process hooks, which it adds to children
 * through NODE_OPTIONS, would catch that signal and re-raise it, so they are left out of that child.
 */
function startAppender(t: Test, path: string, keyPath: string, options: AppenderOptions = {}): Appender {
  const { fileSizeBlocks, resume = false } = options;
  const env = { ...process.env };
  const args = [fixture, path, keyPath, ...(resume ? ['resume'] : [])];
  const stdio: StdioOptions = [resume ? 'pipe' : 'ignore', 'pipe', 'inherit'];
  // The child cannot write a coverage file under a file size limit.
  if (fileSizeBlocks !== undefined) delete env.NODE_V8_COVERAGE;
  const proc =
    fileSizeBlocks === undefined
      ? spawn(process.execPath, args, { stdio, env })
      : spawn(
          '/bin/sh',
          [
            '-c',
            `ulimit -S -f ${fileSizeBlocks} && exec env -u NODE_OPTIONS "$0" "$@"`,
            process.execPath,
            ...args,
          ],
          { stdio, env },
        );
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const check of waiters) check();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (done: (lines: string[]) => boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(lines)) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
      exited.then(() => reject(new Error(`appender exited early: ${lines.slice(-3).join(' | ')}`)), reject);
    });
  return { proc, lines, exited, waitFor };
}

/** seq -> n of every `ok <seq> <n>` line. */
function acknowledged(lines: string[]): Map<number, number> {
  const acked = new Map<number, number>();
  for (const line of lines) {
    const [kind, seq, n] = line.split(' ');
    if (kind === 'ok') acked.set(Number(seq), Number(n));
  }
  return acked;
}

async function readAll(cache: LevelCache): Promise<AttacheRecord[]> {
  const out: AttacheRecord[] = [];
  for (;;) {
    const page = await cache.read({ afterSeq: out.at(-1)?.seq ?? 0, limit: 500, maxBytes: 1e6 });
    if (page.length === 0) return out;
    for (const { seq, json } of page) {
      const record = JSON.parse(json) as AttacheRecord;
      if (record.seq !== seq) throw new Error(`record under key ${seq} says seq ${record.seq}`);
      out.push(record);
    }
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

t.test('SIGKILL mid-stream loses no acknowledged record and reuses no seq', async (t) => {
  const { keyring, keyPath } = await tempKeyring(t);
  const path = t.testdir();
  const acked = new Map<number, number>();
  let appendedHere = 0;
  for (const round of [1, 2]) {
    const child = startAppender(t, path, keyPath);
    await child.waitFor((lines) => lines.includes('open'));
    if (round === 1) {
      await t.rejects(
        new LevelCache({ keyring, path }).open(),
        { code: 'ATTACHE_CACHE_LOCKED' },
        'another process holds the cache',
      );
    }
    await child.waitFor((lines) => lines.length > 1500);
    child.proc.kill('SIGKILL');
    t.equal((await child.exited).signal, 'SIGKILL');
    for (const [seq, n] of acknowledged(child.lines)) acked.set(seq, n);

    const cache = new LevelCache({ keyring, path });
    await cache.open();
    const stored = await readAll(cache);
    const seqs = stored.map((r) => r.seq);
    const last = seqs.at(-1) ?? 0;
    t.same(seqs, range(1, last), `round ${round}: seqs strictly increasing from 1, none skipped or repeated`);
    const bySeq = new Map(stored.map((r) => [r.seq, r]));
    const lost = [...acked].filter(
      ([seq, n]) => bySeq.get(seq)?.clock.monotonicMs !== n || bySeq.get(seq)?.observations[0]?.value !== n,
    );
    t.same(lost, [], `round ${round}: all ${acked.size} acknowledged records are there, intact`);
    t.equal((await cache.stats()).nextSeq, last + 1);
    t.equal((await cache.append(draft(0))).seq, last + 1, 'new appends continue above the last stored seq');
    appendedHere++;
    await cache.close();
  }
  t.ok(appendedHere === 2 && acked.size >= 3000, `${acked.size} acknowledged in all`);
});

t.test(
  'a full disk rejects ATTACHE_CACHE_FULL, stores nothing of the failed group, loses nothing acknowledged',
  async (t) => {
    const { keyring, keyPath } = await tempKeyring(t);
    const path = t.testdir();
    // 400 blocks (200-400 KB): LevelDB's log hits the file size limit after a few hundred records.
    const child = startAppender(t, path, keyPath, { fileSizeBlocks: 400 });
    t.same(await child.exited, { code: 0, signal: null });
    t.equal(child.lines.at(-1), 'closed');
    const failures = child.lines.filter((l) => l.startsWith('error ')).map((l) => l.split(' '));
    t.ok(failures.length > 0, 'appends failed once the disk was "full"');
    t.same(
      failures.map(([, code, , cause]) => [code, cause]),
      failures.map(() => ['ATTACHE_CACHE_FULL', 'LEVEL_IO_ERROR']),
      'a write past the file size limit (EFBIG, as ENOSPC) is ATTACHE_CACHE_FULL, the LevelDB error kept as cause',
    );
    const acked = acknowledged(child.lines);
    t.ok(acked.size > 50, `${acked.size} appends succeeded before that`);
    t.ok(child.lines.includes(`next ${acked.size + 1}`), 'the failed appends used up no seq');

    const cache = new LevelCache({ keyring, path });
    await cache.open();
    t.teardown(() => cache.close());
    const stored = await readAll(cache);
    t.same(
      stored.map((r) => [r.seq, r.clock.monotonicMs]),
      [...acked].sort(([a], [b]) => a - b),
      'exactly the acknowledged records are stored',
    );
    t.same(
      stored.map((r) => r.seq),
      range(1, acked.size),
    );
    const failedNs = new Set(failures.map(([, , n]) => Number(n)));
    t.notOk(
      stored.some((r) => failedNs.has(r.clock.monotonicMs)),
      'no record of a failed append is stored',
    );
    t.equal(
      (await cache.append(draft(0))).seq,
      acked.size + 1,
      'the seq counter was not advanced past stored data',
    );
  },
);

t.test('a corrupt database is repaired on open and keeps its records', async (t) => {
  const { keyring } = await tempKeyring(t);
  const path = t.testdir();
  let cache = new LevelCache({ keyring, path });
  await cache.open();
  for (let n = 0; n < 5; n++) await cache.append(draft(n));
  await cache.remove(1, 2);
  await cache.close();
  writeFileSync(join(path, 'CURRENT'), 'torn');

  const logger = recordingLogger();
  cache = new LevelCache({ keyring, path, logger });
  await cache.open();
  t.teardown(() => cache.close());
  t.ok(
    logger.entries.some((e) => e.level === 'error' && String(e.msg).includes('repairing')),
    'the repair is logged',
  );
  const stats = await cache.stats();
  t.match(stats, { records: 3, firstSeq: 3, lastSeq: 5, nextSeq: 6 });
  t.equal(
    stats.bytes,
    (await cache.read({ afterSeq: 0, limit: 10, maxBytes: 1e6 })).reduce((s, r) => s + r.json.length, 0),
    'counters recounted from the records',
  );
  t.equal((await cache.append(draft(5))).seq, 6);
});

function hasPrlimit(): boolean {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test(
  'after a failed write, records acknowledged once the disk has room again survive a crash',
  { skip: hasPrlimit() ? false : 'needs prlimit (util-linux) to lift the file size limit' },
  async (t) => {
    const { keyring, keyPath } = await tempKeyring(t);
    const path = t.testdir();
    const child = startAppender(t, path, keyPath, { fileSizeBlocks: 400, resume: true });
    await child.waitFor((lines) => lines.some((l) => l.startsWith('next ')));
    const before = acknowledged(child.lines);
    t.ok(
      child.lines.some((l) => l.startsWith('error ATTACHE_CACHE_FULL')),
      'the disk was "full"',
    );
    execFileSync('prlimit', ['--pid', String(child.proc.pid), '--fsize=unlimited']);
    child.proc.stdin?.write('go\n');
    await child.waitFor((lines) => lines.length - lines.indexOf('resumed') > 1000);
    child.proc.kill('SIGKILL');
    await child.exited;
    const acked = acknowledged(child.lines);
    t.ok(acked.size > before.size + 900, 'appends succeeded again once there was room');

    const cache = new LevelCache({ keyring, path });
    await cache.open();
    t.teardown(() => cache.close());
    const stored = await readAll(cache);
    const bySeq = new Map(stored.map((r) => [r.seq, r.clock.monotonicMs]));
    const lost = [...acked].filter(([seq, n]) => bySeq.get(seq) !== n);
    t.same(lost.length, 0, `all ${acked.size} acknowledged records are there`);
    t.same(
      stored.map((r) => r.seq),
      range(1, stored.length),
      'seqs strictly increasing from 1, none skipped or repeated',
    );
  },
);
