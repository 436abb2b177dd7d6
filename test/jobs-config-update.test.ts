// Config updates through AWS IoT Jobs, applied to a real `attache run` process: the harness plays
// systemd (restarts the gateway on the new file) and the health check reads the gateway's log.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateConfig } from '@attache/core';
import { openPtyPair, profileFormat } from '@attache/devkit';
import { ConfigUpdater, type HealthReport } from '@attache/jobs';
import t, { type Test } from 'tap';
import { JobsWorld } from './helpers/jobs-fixtures.js';
import { bin } from './helpers/stack.js';

// The AWS CRT's MQTT clients can hold the event loop until garbage collection: the root test
// ends after its subtests (t.end() below), not when the loop drains, and the process exits then.
t.on('complete', () => setImmediate(() => process.exit()));

/** `attache run` restarted on demand, with a health check on its JSON log. */
class SupervisedGateway {
  readonly #configPath: string;
  #child: ChildProcess | undefined;
  #logs: Record<string, unknown>[] = [];
  restarts = 0;
  lastRestartAt = 0;

  constructor(configPath: string) {
    this.#configPath = configPath;
  }

  async restart(): Promise<void> {
    await this.stop();
    this.restarts++;
    this.lastRestartAt = Date.now();
    const logs: Record<string, unknown>[] = [];
    this.#logs = logs;
    const child = spawn(process.execPath, [bin, 'run', '--config', this.#configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let rest = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line));
    });
    child.stderr?.resume();
    this.#child = child;
  }

  /** Healthy: "gateway started" logged within 30 s, then no exit and no fatal line for `settleMs`. */
  async health(settleMs = 1500): Promise<HealthReport> {
    const child = this.#child;
    const deadline = Date.now() + 30_000;
    const fatal = () => this.#logs.find((l) => Number(l.level) >= 60);
    while (!this.#logs.some((l) => l.msg === 'gateway started')) {
      if (fatal() || child?.exitCode !== null || Date.now() > deadline) return this.#unhealthy(fatal());
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, settleMs));
    if (fatal() || child?.exitCode !== null) return this.#unhealthy(fatal());
    return { healthy: true };
  }

  #unhealthy(line: Record<string, unknown> | undefined): HealthReport {
    const err = (line?.err as { message?: string } | undefined)?.message;
    return {
      healthy: false,
      reason: line ? `${String(line.msg)}${err ? `: ${err}` : ''}` : 'gateway did not start within 30 s',
    };
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

async function gatewaySetup(t: Test, world: JobsWorld) {
  const pty = await openPtyPair(join(world.dir, 'pty'));
  t.teardown(() => pty.close());
  const configPath = join(world.dir, 'config.json');
  const config = {
    version: 1,
    gateway: { id: 'gw-jobs-1', dataDir: join(world.dir, 'gateway-data') },
    log: { level: 'info' },
    devices: [
      { id: 'spo2-bed7', adapter: 'rs232', port: { path: pty.gatewayPath }, format: profileFormat('nonin') },
    ],
  };
  const original = `${JSON.stringify(config, null, 2)}\n`;
  await writeFile(configPath, original);
  const gateway = new SupervisedGateway(configPath);
  t.teardown(() => gateway.stop());
  await gateway.restart();
  t.ok((await gateway.health(0)).healthy, 'the gateway runs on its first config');
  const updater = new ConfigUpdater({
    configPath,
    validate: validateConfig,
    restart: () => gateway.restart(),
    healthCheck: () => gateway.health(),
  });
  return { config, original, configPath, gateway, handlers: { 'config-update': updater } };
}

const job = (mode: string, artifact: unknown) => ({
  schemaVersion: 2,
  operation: 'config-update',
  mode,
  artifact,
});

t.test('a config update downloaded across two windows is applied to the running gateway', async (t) => {
  const world = await JobsWorld.start(t);
  const { config, original, configPath, gateway, handlers } = await gatewaySetup(t, world);
  const next = { ...config, log: { level: 'debug' } };
  const content = Buffer.from(JSON.stringify(next));
  const url = world.server.serve('config.json', content);
  await world.addJob('config-1', job('replace', world.artifact(content, { url })));

  world.server.cutNextAt(100);
  const first = await world.window(handlers);
  t.equal(first.jobs[0]?.status, 'IN_PROGRESS', 'cut in the first window');
  t.equal(await readFile(configPath, 'utf8'), original, 'the config is unchanged meanwhile');

  const restartsBefore = gateway.restarts;
  const second = await world.window(handlers);
  t.equal(second.jobs[0]?.status, 'SUCCEEDED');
  t.same(JSON.parse(await readFile(configPath, 'utf8')), next, 'the new config is in place');
  t.equal(await readFile(`${configPath}.prev`, 'utf8'), original, 'the previous config is kept');
  t.equal(gateway.restarts, restartsBefore + 1, 'the gateway was restarted once on it');
  t.ok(gateway.running, 'and runs');
  const execution = world.emulator.executions.get('config-1');
  t.equal(execution?.status, 'SUCCEEDED');
  const handed = execution?.updates.find((u) => u.statusDetails.step === 'applying')?.at ?? 0;
  t.comment(
    `config update: start-next answered to SUCCEEDED accepted in ${second.jobs[0]?.durationMs} ms, of which a 1.5 s ` +
      `health window; "applying" to the gateway restarted on the new file: ${gateway.lastRestartAt - handed} ms`,
  );
});

t.test('an invalid config is REJECTED and never reaches the gateway', async (t) => {
  const world = await JobsWorld.start(t);
  const { original, configPath, gateway, handlers } = await gatewaySetup(t, world);
  const patch = Buffer.from(JSON.stringify({ log: { level: 'loud' } }));
  await world.addJob('invalid', job('merge-patch', world.artifact(patch, { inline: true })));
  const restarts = gateway.restarts;
  const result = await world.window(handlers);
  t.equal(result.jobs[0]?.status, 'REJECTED');
  t.match(
    world.emulator.executions.get('invalid')?.statusDetails.reason,
    /invalid config: \/log\/level must be one of/,
  );
  t.equal(await readFile(configPath, 'utf8'), original, 'the config file is untouched');
  t.equal(gateway.restarts, restarts, 'the gateway was not restarted');
});

t.test('a config that breaks the gateway is rolled back and the job FAILED with the reason', async (t) => {
  const world = await JobsWorld.start(t);
  const { original, configPath, gateway, handlers } = await gatewaySetup(t, world);
  // Valid by the schema, but the gateway cannot create its data directory there.
  const patch = Buffer.from(JSON.stringify({ gateway: { dataDir: '/dev/null/attache' } }));
  await world.addJob('breaks', job('merge-patch', world.artifact(patch, { inline: true })));
  const result = await world.window(handlers);
  t.equal(result.jobs[0]?.status, 'FAILED');
  const reason = world.emulator.executions.get('breaks')?.statusDetails.reason ?? '';
  t.match(reason, /unhealthy on the new config: gateway failed to start.*rolled back/);
  t.equal(await readFile(configPath, 'utf8'), original, 'the previous config is back');
  t.ok((await gateway.health(0)).healthy, 'the gateway runs again on it');
});

t.end();
