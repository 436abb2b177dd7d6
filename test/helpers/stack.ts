// End-to-end harness: the built `attache` binary as a user runs it, a socat pty pair with a device
// simulator on the far end, and Debian's mosquitto with mutual TLS. Everything in a temp dir, every
// process stopped at teardown.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTestPki,
  LineDeviceSimulator,
  type MosquittoBroker,
  openPtyPair,
  type PtyPair,
  profileFormat,
  startMosquitto,
  subscribeTopic,
  type TestPki,
  type TopicSubscriber,
  uplinkSettings,
} from '@attache/devkit';

export const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
export const thingName = 'gw-e2e-1';
export const topic = `dt/attache/${thingName}/telemetry`;

interface Tap {
  teardown(fn: () => unknown): void;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `attache <args>` to completion. */
export function attache(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, ...env }, timeout: 180_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A running `attache run`, its log lines parsed. */
export class GatewayProcess {
  readonly logs: Record<string, unknown>[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  /**
   * `wrapper`: a command the gateway runs under, e.g. `['nsenter', '-t', pid, '-U', '-n']` to put it
   * in another network namespace; it must exec the program so that signals reach the gateway.
   */
  constructor(configPath: string, wrapper: string[] = []) {
    const argv = [...wrapper, process.execPath, bin, 'run', '--config', configPath];
    this.child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let rest = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      rest += chunk;
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.logs.push(JSON.parse(line));
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => process.stderr.write(chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first log line matching `match`. */
  async waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no such log line within ${timeoutMs} ms`);
      if (this.child.exitCode !== null) throw new Error(`gateway exited with ${this.child.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

export interface StackOptions {
  /** Upload settings merged into the config's uplink section. */
  uplink?: Record<string, unknown>;
  /** The broker's ACL (default: generated from the fleet's IoT policies, see startMosquitto). */
  acl?: string;
}

/** One test's world: temp dir, PKI, broker, pty pair, simulator, config file. */
export class Stack {
  readonly dir: string;
  readonly configPath: string;
  readonly pki: TestPki;
  readonly broker: MosquittoBroker;
  readonly pty: PtyPair;
  readonly device: LineDeviceSimulator;
  readonly #gateways: GatewayProcess[] = [];
  readonly #subscribers: TopicSubscriber[] = [];

  private constructor(parts: {
    dir: string;
    pki: TestPki;
    broker: MosquittoBroker;
    pty: PtyPair;
    device: LineDeviceSimulator;
  }) {
    this.dir = parts.dir;
    this.configPath = join(parts.dir, 'config.json');
    this.pki = parts.pki;
    this.broker = parts.broker;
    this.pty = parts.pty;
    this.device = parts.device;
  }

  static async start(t: Tap, options: StackOptions = {}): Promise<Stack> {
    const dir = await mkdtemp(join(tmpdir(), 'attache-e2e-'));
    const pki = await createTestPki(join(dir, 'pki'), { thingName });
    const broker = await startMosquitto({ dir: join(dir, 'broker'), pki, acl: options.acl });
    const pty = await openPtyPair(join(dir, 'pty'));
    const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin' });
    await device.open();
    const stack = new Stack({ dir, pki, broker, pty, device });
    t.teardown(() => stack.stop());
    await stack.writeConfig(stack.config(options));
    return stack;
  }

  config(options: StackOptions = {}): Record<string, unknown> {
    return {
      version: 1,
      gateway: { id: thingName, dataDir: join(this.dir, 'data') },
      log: { level: 'info' },
      cache: { commitIntervalMs: 2 },
      devices: [
        {
          id: 'spo2-bed7',
          adapter: 'rs232',
          port: { path: this.pty.gatewayPath, stopBits: 2, reconnectMs: 200 },
          format: profileFormat('nonin'),
        },
      ],
      uplink: {
        ...uplinkSettings(this.broker, this.pki),
        connectTimeoutMs: 40_000,
        ...options.uplink,
      },
    };
  }

  async writeConfig(config: unknown): Promise<void> {
    await writeFile(this.configPath, JSON.stringify(config, null, 2));
  }

  /** Starts `attache run`, optionally under `wrapper` (see GatewayProcess). */
  startGateway(wrapper: string[] = []): GatewayProcess {
    const gateway = new GatewayProcess(this.configPath, wrapper);
    this.#gateways.push(gateway);
    return gateway;
  }

  /** Subscribes to the gateway's telemetry (or events, or state) topic; stopped with the stack. */
  async subscribe(kind: 'telemetry' | 'events' | 'state' = 'telemetry'): Promise<TopicSubscriber> {
    const subscriber = await subscribeTopic({
      broker: this.broker,
      pki: this.pki,
      topic: `dt/attache/${thingName}/${kind}`,
    });
    this.#subscribers.push(subscriber);
    return subscriber;
  }

  /** `attache <command> --config <this stack's config>`. */
  run(...args: string[]): Promise<CommandResult> {
    return attache([...args, '--config', this.configPath]);
  }

  /** Polls `attache status --json` until `done` holds. */
  async statusUntil(done: (status: StatusJson) => boolean, timeoutMs = 30_000): Promise<StatusJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { code, stdout, stderr } = await this.run('status', '--json');
      if (code !== 0) throw new Error(`attache status failed: ${stderr}`);
      const status = JSON.parse(stdout) as StatusJson;
      if (done(status)) return status;
      if (Date.now() > deadline) throw new Error(`status never matched: ${stdout}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    for (const g of this.#gateways) await g.stop();
    for (const s of this.#subscribers) await s.stop();
    this.device.stop();
    await this.device.close();
    await this.pty.close();
    await this.broker.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface StatusJson {
  running: boolean;
  backlog: { records: number; bytes: number; nextSeq: number; oldestCapturedAt: string | null };
  cache: { dropped: number; quarantined: number; full: boolean };
  lastWindow: { outcome: string; records: number } | null;
  adapters: {
    deviceId: string;
    state: string;
    frames: number;
    stored: number;
    malformed: number;
    refused: number;
  }[];
}

/** The records of every batch message received, in arrival order. */
export function recordsOf(messages: Buffer[]): Record<string, unknown>[] {
  return messages.flatMap(
    (m) => (JSON.parse(m.toString('utf8')) as { records: Record<string, unknown>[] }).records,
  );
}
