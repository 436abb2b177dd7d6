import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const devGateway = fileURLToPath(new URL('../packages/devkit/dist/dev-gateway.js', import.meta.url));

t.test(
  'make run: the simulated oximeter reaches the local broker, and Ctrl-C stops everything',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'attache-dev-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const child = spawn(process.execPath, [devGateway], {
      env: { ...process.env, ATTACHE_DEV_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
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

    // The first window opens 15 s after start.
    const deadline = Date.now() + 60_000;
    // The dashboard may see the batch before the window's close is logged: wait for both.
    while (
      !(/dashboard: \S+ batch seq 1-\d+/.test(output) && output.includes('"msg":"window closed"')) &&
      Date.now() < deadline &&
      child.exitCode === null
    ) {
      await new Promise((r) => setTimeout(r, 200));
    }
    t.match(output, /simulated Nonin oximeter on /, 'it says what it started');
    t.match(
      output,
      /dashboard: dt\/attache\/attache-dev\/telemetry batch seq 1-\d+ \(\d+ records\)/,
      'the dashboard stand-in received the first batch',
    );
    t.match(output, /"msg":"window closed"/);

    child.kill('SIGINT');
    t.equal(await exited, 0, 'Ctrl-C stops the gateway cleanly');
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
