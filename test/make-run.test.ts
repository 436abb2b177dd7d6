import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const devGateway = fileURLToPath(new URL('../packages/devkit/dist/dev-gateway.js', import.meta.url));
const bin = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url));

t.test(
  'make run: the simulated oximeter reaches the local broker, and Ctrl-C stops everything',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-dev-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    // Its own process group, as in a terminal: Ctrl-C signals the whole group.
    const child = spawn(process.execPath, [devGateway, bin], {
      env: { ...process.env, ATTACHE_DEV_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    // The first window opens 15 s after start; on a loaded machine the device.connected event may
    // only make the next one.
    const deadline = Date.now() + 120_000;
    // Everything asserted below is waited for: the window's own log line may come after the dashboard's.
    const shown = () =>
      /dashboard: state: /.test(output) &&
      /dashboard: batch seq 1-/.test(output) &&
      /dashboard: event \S+ device.connected/.test(output) &&
      /"msg":"window closed"/.test(output);
    while (!shown() && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    t.match(output, /simulated Nonin oximeter on /, 'it says what it started');
    t.match(
      output,
      /dashboard: batch seq 1-\d+ \(\d+ records\)/,
      'the dashboard stand-in received the first batch',
    );
    t.match(
      output,
      /dashboard: {3}\d\d:\d\d:\d\d spo2-bed1 #1: SPO2 (\d+ %|-- %)/,
      `and shows the values of its records: ${output
        .split('\n')
        .filter((l) => l.startsWith('dashboard'))
        .slice(0, 6)
        .join(' / ')}`,
    );
    t.match(output, /dashboard: event \S+ device.connected deviceId=spo2-bed1/, 'the events');
    t.match(
      output,
      /dashboard: state: backlog \d+ records; last window .*; spo2-bed1 connected/,
      'the state',
    );
    t.match(output, /"msg":"window closed"/, 'the window closed');
    t.notMatch(
      output,
      /trusted time|Date header/i,
      'the dev config asks nothing the local broker cannot answer',
    );
    t.notMatch(output, /"stack":/, 'no stack trace in the log at level info');

    process.kill(-(child.pid as number), 'SIGINT');
    t.equal(await exited, 0, `Ctrl-C stops the gateway cleanly: ${output.slice(-2000)}`);
    const ps = await new Promise<string>((resolve) => {
      const p = spawn('ps', ['-eo', 'args'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      p.stdout.setEncoding('utf8').on('data', (c: string) => {
        text += c;
      });
      p.once('exit', () => resolve(text));
    });
    t.notMatch(ps, dir, 'no socat, mosquitto or simulator is left running');
  },
);
