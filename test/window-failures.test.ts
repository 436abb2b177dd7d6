// A window reports why it failed, a jobs set-up failure does not stop the telemetry, and a gateway
// stopped during a window (Ctrl-C, `systemctl stop`) records it as interrupted: each against a real
// `attache run` and the real mosquitto.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { bin, recordsOf, Stack } from './helpers/stack.js';

interface WindowJson {
  outcome: string;
  endedBy?: string;
  records: number;
  error?: { code: string; message: string };
  jobsError?: { code: string; message: string };
}

t.test(
  'a jobs key gone missing: telemetry still goes up; status, state and log name the cause',
  async (t) => {
    const stack = await Stack.start(t);
    const keyFile = join(stack.dir, 'jobs.pub');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    await stack.writeConfig({ ...stack.config(), jobs: { publicKeyFile: keyFile } });
    const gateway = stack.startGateway();
    await gateway.waitForLog((l) => l.msg === 'gateway started');
    for (let i = 0; i < 5; i++) await stack.device.sendReading();
    await stack.statusUntil((s) => s.backlog.records === 5);
    await rm(keyFile);

    const telemetry = await stack.subscribe();
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0, 'the window drained the backlog');
    const window = JSON.parse(sync.stdout) as WindowJson;
    t.match(window, { outcome: 'drained', records: 5 });
    t.equal(window.error, undefined, 'the window itself did not fail');
    t.equal(window.jobsError?.code, 'ATTACHE_JOBS_UNAVAILABLE');
    // The key's ownership is checked (stat) before it is read.
    t.match(window.jobsError?.message, `ENOENT: no such file or directory, stat '${keyFile}'`);
    await telemetry.waitFor(1, 30_000);

    const logged = await gateway.waitForLog((l) => l.code === 'ATTACHE_JOBS_UNAVAILABLE');
    t.equal(logged.level, 50, 'logged as an error');
    t.match(logged.msg, /^jobs not taken in this window: ENOENT/);
    const status = await stack.run('status');
    t.match(
      status.stdout,
      /last window \[manual\] drained after .*\n\s+jobs ATTACHE_JOBS_UNAVAILABLE: jobs not taken in this window: ENOENT/,
      'attache status names the cause',
    );

    // The next window's state message carries the previous window's result, cause included.
    const state = await stack.subscribe('state');
    t.equal((await stack.run('sync', '--json')).code, 0);
    const [message] = await state.waitFor(1, 30_000);
    const reported = JSON.parse(String(message)).state.lastWindow;
    t.match(reported, { outcome: 'drained', jobsErrorCode: 'ATTACHE_JOBS_UNAVAILABLE' });
    t.match(reported.jobsErrorMessage, /ENOENT/);
  },
);

for (const [signal, as] of [
  ['SIGINT', 'Ctrl-C in a terminal'],
  ['SIGTERM', 'systemctl stop'],
] as const) {
  t.test(`${as} (${signal} to every process) during a window: recorded as interrupted`, async (t) => {
    // Policy `always`: a window is open the whole time (it uploads readings as they arrive), so the
    // signal lands inside one however slow the machine is.
    const stack = await Stack.start(t, {
      uplink: { window: { alwaysConnected: true, maxDurationSeconds: 600 } },
    });
    // Its own process group, as a terminal or a systemd unit gives it: the signal reaches the window process too.
    const gateway = spawn(process.execPath, [bin, 'run', '--config', stack.configPath], {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => gateway.once('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (gateway.exitCode === null) gateway.kill('SIGKILL');
    });
    let out = '';
    gateway.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    const telemetry = await stack.subscribe();
    // The control socket answers before the adapters have opened their ports: wait for the port.
    await stack.statusUntil((s) => s.adapters[0]?.state === 'connected');
    const total = 10;
    for (let i = 0; i < total; i++) await stack.device.sendReading();
    const uploaded = await stack.statusUntil(
      (s) => s.backlog.records === 0 && s.adapters[0]?.stored === total,
      60_000,
    );
    t.ok((uploaded as unknown as { uplink: { windowOpen: boolean } }).uplink.windowOpen, 'a window is open');
    t.equal(recordsOf(telemetry.messages).length, total, 'the readings went up in it');

    process.kill(-(gateway.pid as number), signal);
    t.equal(await exited, 0, 'the gateway stopped cleanly');
    const status = await stack.statusUntil(() => true);
    const last = status.lastWindow as (WindowJson & { trigger?: string }) | null;
    t.equal(last?.endedBy, 'interrupted', 'the window is recorded as interrupted');
    t.equal(last?.outcome, 'deadline', 'not as failed');
    t.equal(last?.error, undefined, 'with no error');
    t.equal(last?.trigger, 'always');
    t.equal(last?.records, total, 'with what it uploaded');
    t.equal(status.backlog.records, 0);
    t.notMatch(out, 'ATTACHE_INTERNAL', 'no internal error was logged');
    const text = await stack.run('status');
    t.match(text.stdout, /last window \[always\] interrupted \(the gateway was stopping/);
  });
}

t.test(
  'attache sync --json with no gateway running: stdout is the JSON result only, logs on stderr',
  async (t) => {
    const stack = await Stack.start(t);
    const sync = await stack.run('sync', '--json');
    t.equal(sync.code, 0, sync.stderr);
    t.match(JSON.parse(sync.stdout), { outcome: 'drained' }, 'stdout parses as one JSON document');
    t.equal(sync.stdout.trim().split('\n').length, 1);
    const logs = sync.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string });
    t.ok(
      logs.some((l) => l.msg === 'window closed'),
      'the window process logs on stderr too',
    );
  },
);
