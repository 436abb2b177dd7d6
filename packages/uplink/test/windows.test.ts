import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WindowConfig } from '@attache/core';
import {
  currentOrNextSlot,
  IotCoreUplink,
  parseSlot,
  runHook,
  type SchedulerClock,
  type WindowRequest,
  WindowScheduler,
} from '@attache/uplink';
import t from 'tap';
import {
  exitWhenComplete,
  gatewayId,
  MemoryOutbox,
  startBroker,
  uplinkConfig,
} from './fixtures/uplink-fixtures.js';

exitWhenComplete(t);

/** A clock whose time only moves when the test says; timers fire on advance(). */
class FakeClock implements SchedulerClock {
  #now: number;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(start: number) {
    this.#now = start;
  }
  now = () => this.#now;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.#timers.delete(handle as number);
  };
  /** The delay until the earliest timer, in ms. */
  nextDelay(): number {
    return Math.min(...[...this.#timers.values()].map((x) => x.at)) - this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
    for (const [id, timer] of [...this.#timers]) {
      if (timer.at > this.#now) continue;
      this.#timers.delete(id);
      timer.fn();
    }
  }
}

const localTime = (h: number, m: number, s = 0) => new Date(2026, 5, 15, h, m, s).getTime();
const window = (over: Partial<WindowConfig> = {}): WindowConfig => ({
  everySeconds: 0,
  jitterSeconds: 0,
  maxDurationSeconds: 600,
  schedules: [],
  onNetworkUp: false,
  networkPollSeconds: 30,
  alwaysConnected: false,
  maxBytes: 0,
  ...over,
});

t.test('daily slots in local time: current, next, across midnight; malformed ones named', async (t) => {
  const slots = ['02:00-02:20', '23:50-00:10'].map(parseSlot);
  t.match(currentOrNextSlot(slots, localTime(1, 0)), { startMs: localTime(2, 0), endMs: localTime(2, 20) });
  t.match(currentOrNextSlot(slots, localTime(2, 10)), { startMs: localTime(2, 0) }, 'in progress');
  t.match(currentOrNextSlot(slots, localTime(12, 0)), {
    slot: { text: '23:50-00:10' },
    startMs: localTime(23, 50),
  });
  const justAfterMidnight = new Date(2026, 5, 16, 0, 5).getTime();
  t.match(currentOrNextSlot(slots, justAfterMidnight), {
    startMs: localTime(23, 50),
    endMs: new Date(2026, 5, 16, 0, 10).getTime(),
  });
  t.throws(() => parseSlot('2:00-02:20'), TypeError);
  t.throws(() => parseSlot('02:00-02:00'), /empty slot/);
});

t.test('a scheduled window opens by itself at its slot and closes by itself at its end', async (t) => {
  const fixture = await startBroker();
  t.teardown(fixture.cleanup);
  const outbox = new MemoryOutbox();
  outbox.add(12_000);
  // 512 KB/s with flow control: 12,000 records of ~1.3 KB need ~30 s, far more than the 3 s left in
  // the slot even with the SDK's initial burst allowance.
  const uplink = new IotCoreUplink({
    gatewayId,
    config: uplinkConfig(fixture, { flowControl: 'aws-iot-core', maxMessageBytes: 16_000 }),
  });
  const clock = new FakeClock(localTime(1, 59, 57));
  const requests: WindowRequest[] = [];
  let finished: (r: { outcome: string; endedBy: string }) => void = () => {};
  const done = new Promise<{ outcome: string; endedBy: string }>((resolve) => (finished = resolve));
  const scheduler = new WindowScheduler({
    window: window({ schedules: ['02:00-02:20'] }),
    clock,
    open: async (request) => {
      requests.push(request);
      const result = await uplink.openWindow(outbox, { maxDurationMs: request.maxDurationMs });
      finished(result);
      return result;
    },
  });
  t.teardown(() => scheduler.stop());
  scheduler.start();
  t.equal(clock.nextDelay(), 3000, 'waits for 02:00');
  t.same(requests, [], 'nothing opened before the slot');
  // The slot's last 3 s: jump to 02:19:57 and let the 02:00 timer fire there.
  clock.advance(localTime(2, 19, 57) - clock.now());
  t.match(
    requests,
    [{ trigger: 'schedule', maxDurationMs: 3000, linger: false }],
    'opened with the time left',
  );
  const result = await done;
  t.equal(result.outcome, 'deadline', 'closed at the end of its slot');
  t.ok(
    outbox.seqs().length > 0 && outbox.seqs().length < 12_000,
    'part sent, the rest kept for the next window',
  );
  await new Promise((r) => setImmediate(r));
  clock.advance(3000);
  t.equal(clock.nextDelay(), localTime(2, 0) + 86_400_000 - clock.now(), 'the next window is tomorrow 02:00');
  t.same(scheduler.policies(), ['schedule 02:00-02:20', 'manual']);
});

t.test(
  'interval, always-connected (lingers, reopens after a failure with back-off) and button policies',
  async (t) => {
    const clock = new FakeClock(localTime(10, 0));
    const requests: WindowRequest[] = [];
    const outcomes = ['failed', 'drained'];
    const scheduler = new WindowScheduler({
      window: window({ everySeconds: 60, alwaysConnected: true }),
      clock,
      open: async (request) => {
        requests.push(request);
        return { outcome: request.trigger === 'always' ? (outcomes.shift() ?? 'drained') : 'drained' };
      },
    });
    t.teardown(() => scheduler.stop());
    scheduler.start();
    await new Promise((r) => setImmediate(r));
    t.match(requests, [{ trigger: 'always', linger: true }]);
    t.equal(clock.nextDelay(), 5000, 'a failed always-connected window is retried after 5 s');
    clock.advance(5000);
    await new Promise((r) => setImmediate(r));
    t.equal(requests.length, 2);
    clock.advance(55_000);
    t.match(
      requests.filter((r) => r.trigger === 'interval'),
      [{ linger: false }],
      'the interval fires at 60 s',
    );
    t.ok(
      requests.filter((r) => r.trigger === 'always').length >= 3,
      'a drained always-connected window reopens at once',
    );
    t.same(scheduler.policies(), ['interval 60 s', 'always', 'manual']);
  },
);

t.test('jitter: schedules, intervals and the always-connected back-off are spread at random', async (t) => {
  const draws = [0.5, 0.25, 0.5, 0.5, 0.5];
  const random = () => draws.shift() ?? 0.5;
  // A 20-minute slot, 60 s of jitter: 02:00 + 30 s (half of 60 s).
  const clock = new FakeClock(localTime(1, 59, 0));
  const requests: WindowRequest[] = [];
  const scheduler = new WindowScheduler({
    window: window({
      schedules: ['02:00-02:20'],
      everySeconds: 600,
      jitterSeconds: 60,
      alwaysConnected: true,
    }),
    clock,
    random,
    retryJitter: 0.2,
    open: async (request) => {
      requests.push(request);
      return { outcome: request.trigger === 'always' ? 'failed' : 'drained' };
    },
  });
  t.teardown(() => scheduler.stop());
  scheduler.start();
  await new Promise((r) => setImmediate(r));
  // Timers now: the slot at 60 s + 30 s, the interval at 600 s + 15 s (0.25 × 60 s), always's retry.
  t.equal(clock.nextDelay(), 5000 * (1 - 0.2 * 0.5), 'a failed always-connected window: 5 s less 10 %');
  clock.advance(4500);
  await new Promise((r) => setImmediate(r));
  clock.advance(90_000 - 4500 - 1);
  t.notOk(
    requests.some((r) => r.trigger === 'schedule'),
    'not at 02:00 sharp',
  );
  clock.advance(1);
  t.ok(
    requests.some((r) => r.trigger === 'schedule'),
    'at 02:00:30',
  );
  const beforeInterval = requests.filter((r) => r.trigger === 'interval').length;
  clock.advance(615_000 - 90_000 - 1);
  t.equal(requests.filter((r) => r.trigger === 'interval').length, beforeInterval, 'not at 600 s');
  clock.advance(1);
  t.equal(requests.filter((r) => r.trigger === 'interval').length, beforeInterval + 1, 'at 615 s');
});

t.test('jitter never moves a scheduled window past the middle of its slot', async (t) => {
  const clock = new FakeClock(localTime(2, 19, 0));
  const scheduler = new WindowScheduler({
    window: window({ schedules: ['02:00-02:20'], jitterSeconds: 3600 }),
    clock,
    random: () => 0.999_999,
    open: async () => ({ outcome: 'drained' }),
  });
  t.teardown(() => scheduler.stop());
  scheduler.start();
  t.equal(clock.nextDelay(), 30_000, 'in progress, 60 s left: at most 30 s later');
});

t.test('a push button is a command whose output lines are presses (a stand-in for gpiomon)', async (t) => {
  // gpiomon prints one line per edge; this stand-in prints what the test writes into a FIFO. It
  // holds the FIFO open for reading and writing, so it never sees an end and never closes it between
  // presses (a reader that closed and opened again could leave a press's write without a reader).
  const fifo = join(await mkdtemp(join(tmpdir(), 'attache-button-')), 'gpio');
  t.teardown(() => rm(join(fifo, '..'), { recursive: true, force: true }));
  await new Promise<void>((resolve, reject) =>
    execFile('mkfifo', [fifo], (err) => (err ? reject(err) : resolve())),
  );
  const opened: { trigger: string; at: number }[] = [];
  const waiting: (() => void)[] = [];
  const clock = new FakeClock(localTime(10, 0));
  const scheduler = new WindowScheduler({
    window: window({
      button: { command: ['/bin/sh', '-c', 'exec cat 0<>"$0"', fifo], debounceMs: 1000 },
    }),
    clock,
    open: async (request) => {
      opened.push({ trigger: request.trigger, at: clock.now() });
      waiting.shift()?.();
      return { outcome: 'drained' };
    },
  });
  t.teardown(() => scheduler.stop());
  scheduler.start();
  /** Writes `lines` edges at once and resolves when the next window is asked for. */
  const press = async (lines: number) => {
    const next = new Promise<void>((resolve) => waiting.push(resolve));
    await writeFile(fifo, 'event: FALLING EDGE\n'.repeat(lines));
    await next;
  };
  const start = clock.now();
  await press(2);
  clock.advance(1000);
  await press(1);
  t.same(
    opened,
    [
      { trigger: 'button', at: start },
      { trigger: 'button', at: start + 1000 },
    ],
    'two presses within the debounce time count once; the next press after it opens the next window',
  );
});

/** Whether process `pid` is gone or only waits to be reaped (state Z in /proc/PID/stat). */
async function ended(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

t.test('hooks: a process a hook leaves running does not hold the window', { timeout: 20_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-hooks-'));
  const pids: number[] = [];
  t.teardown(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await rm(dir, { recursive: true, force: true });
  });
  const log = (await import('@attache/core')).nullLogger;

  // The hook exits at once; the process it started in the background keeps its stdout for 10 min.
  const left = await runHook(
    { command: ['/bin/sh', '-c', `sleep 600 & echo $! > ${dir}/bg; echo up`], timeoutSeconds: 60 },
    'pre-hook',
    log,
  );
  const background = Number(await readFile(join(dir, 'bg'), 'utf8'));
  pids.push(background);
  t.match(left, { ok: true, code: 0, timedOut: false }, 'the hook counts as done when it exits');
  t.notOk(await ended(background), 'the process it left running is left alone');

  // The hook itself hangs past its timeout: it is killed with everything it started.
  const hung = await runHook(
    { command: ['/bin/sh', '-c', `sleep 600 & echo $! > ${dir}/child; wait`], timeoutSeconds: 1 },
    'pre-hook',
    log,
  );
  const child = Number(await readFile(join(dir, 'child'), 'utf8'));
  pids.push(child);
  t.match(hung, { ok: false, timedOut: true }, 'the hook timed out');
  let gone = await ended(child);
  for (const deadline = Date.now() + 30_000; !gone && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 100));
    gone = await ended(child);
  }
  t.ok(gone, 'the process the hung hook started was killed with it');
});

t.test('hooks: exit status, timeout (killed), a missing program; never a rejection', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'attache-hooks-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = (await import('@attache/core')).nullLogger;
  const ok = await runHook(
    { command: ['/bin/sh', '-c', `echo up > ${dir}/iface`], timeoutSeconds: 5 },
    'pre-hook',
    log,
  );
  t.match(ok, { ok: true, code: 0, timedOut: false });
  t.equal(await readFile(join(dir, 'iface'), 'utf8'), 'up\n', 'the hook ran');
  t.match(await runHook({ command: ['/bin/false'], timeoutSeconds: 5 }, 'h', log), { ok: false, code: 1 });
  t.match(await runHook({ command: ['/bin/sleep', '30'], timeoutSeconds: 1 }, 'h', log), {
    ok: false,
    timedOut: true,
  });
  t.match(await runHook({ command: ['/nonexistent/ifup'], timeoutSeconds: 1 }, 'h', log), {
    ok: false,
    startError: 'ENOENT',
  });
});
