import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { mosquittoAcl } from './acl.js';
import type { TestPki } from './pki.js';
import { getFreePort, isListening } from './ports.js';

/** A running local mosquitto with mutual TLS. */
export interface MosquittoBroker {
  /** `localhost`: the name the server certificate is issued for. */
  host: string;
  port: number;
  /** Kills the broker with SIGKILL (a crash: no clean disconnect) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the broker again on the same port; resolves once it accepts TCP connections. */
  restart(): Promise<void>;
  /** Stops the broker (SIGTERM, SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * The `uplink` settings that connect a gateway to this broker as the PKI's thing (client
 * certificate, CA), in the config file's form.
 */
export function uplinkSettings(
  broker: MosquittoBroker,
  pki: TestPki,
): { endpoint: string; port: number; certFile: string; keyFile: string; caFile: string; shadowName: string } {
  return {
    // Mosquitto runs no Device Shadow service: without this, each window would wait for its answer.
    shadowName: '',
    endpoint: broker.host,
    port: broker.port,
    certFile: pki.clientCertFile,
    keyFile: pki.clientKeyFile,
    caFile: pki.caFile,
  };
}

/** Options of {@link startMosquitto}. */
export interface MosquittoOptions {
  /** Where the generated `mosquitto.conf` is written; created if missing. */
  dir: string;
  pki: TestPki;
  /** Default: a free port. */
  port?: number;
  /**
   * The `acl_file` the broker enforces. Default: {@link mosquittoAcl}(), the fleet's AWS IoT
   * policies (each gateway certificate only on its own thing's topics; the subscriber certificate,
   * CN `dashboard`, stands for the cloud side and may do anything). `false`: no ACL.
   */
  acl?: string | false;
}

/** A message subscription through `mosquitto_sub`. */
export interface TopicSubscriber {
  /** Every payload received so far, in arrival order. */
  messages: Buffer[];
  /** Resolves with `messages` once it holds at least `count`; rejects after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number): Promise<Buffer[]>;
  /** Ends `mosquitto_sub`. */
  stop(): Promise<void>;
}

/** Options of {@link subscribeTopic}. */
export interface SubscribeOptions {
  broker: MosquittoBroker;
  pki: TestPki;
  /** A topic filter, or several (one SUBSCRIBE; messages arrive in the order the broker took them). */
  topic: string | string[];
  /** The client certificate and key to subscribe as. Default: the PKI's subscriber (`dashboard`). */
  identity?: ClientIdentity;
}

/** A client certificate and its key (PEM files). */
export interface ClientIdentity {
  certFile: string;
  keyFile: string;
}

/** Options of {@link publishMessage}. */
export interface PublishOptions {
  broker: MosquittoBroker;
  pki: TestPki;
  topic: string;
  payload: string;
  /** Default: the PKI's subscriber (`dashboard`). */
  identity?: ClientIdentity;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Spawns a tracked child: killed when the parent exits normally (exit hook) and, through
 * `setpriv --pdeathsig`, also when the parent dies of a signal.
 */
function spawnTracked(command: string, args: string[]): ChildProcess {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const child of children) child.kill('SIGKILL');
    });
  }
  // Its own process group: a Ctrl-C in the terminal (SIGINT to the foreground group) must not stop
  // the broker under a window that is ending cleanly; the parent stops it after the gateway.
  const options: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], detached: true };
  const child: ChildProcess = existsSync('/usr/bin/setpriv')
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', command, ...args], options)
    : spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

/** The last lines a child wrote to stderr, for error messages. */
function stderrTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-2000);
  });
  return () => tail.trim();
}

async function waitListening(child: ChildProcess, port: number, tail: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`mosquitto exited (${child.exitCode ?? child.signalCode}): ${tail()}`);
    }
    if (await isListening(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await terminate(child, 'SIGKILL');
  throw new Error(`mosquitto did not listen on port ${port} within 30 s: ${tail()}`);
}

function mosquittoConf(port: number, pki: TestPki, aclFile: string | undefined): string {
  const lines = [
    `listener ${port} 127.0.0.1`,
    `cafile ${pki.caFile}`,
    `certfile ${pki.serverCertFile}`,
    `keyfile ${pki.serverKeyFile}`,
    'tls_version tlsv1.2',
    'require_certificate true',
    'use_identity_as_username true',
    'allow_anonymous false',
    'persistence false',
    // AWS IoT Core's CONNACK advertises receiveMaximum 100; mosquitto's default is 20.
    'max_inflight_messages 100',
    // Tests count every message: never drop for a slow subscriber.
    'max_queued_messages 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
  ];
  if (aclFile) lines.push(`acl_file ${aclFile}`);
  // Started as root, mosquitto switches to user "mosquitto", which cannot read these files.
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Starts Debian's `mosquitto` as the current user with a generated config in `dir`: one listener on
 * 127.0.0.1:`port`, TLS 1.2 minimum, client certificates required and used as user names, no
 * anonymous access, no persistence, and the ACL of `options.acl` (the fleet's IoT policies). Resolves once it accepts TCP connections (at most 30 s);
 * rejects with mosquitto's stderr when it exits or does not listen. The process is killed when
 * the calling process exits.
 */
export async function startMosquitto(options: MosquittoOptions): Promise<MosquittoBroker> {
  const port = options.port ?? (await getFreePort());
  const confFile = join(options.dir, 'mosquitto.conf');
  await mkdir(options.dir, { recursive: true });
  const acl = options.acl ?? mosquittoAcl();
  let aclFile: string | undefined;
  if (acl !== false) {
    aclFile = join(options.dir, 'acl');
    await writeFile(aclFile, acl);
  }
  await writeFile(confFile, mosquittoConf(port, options.pki, aclFile));
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const started = spawnTracked('mosquitto', ['-c', confFile]);
    child = started;
    await waitListening(started, port, stderrTail(started));
  };
  await launch();
  return {
    host: 'localhost',
    port,
    kill: async () => {
      if (child) await terminate(child, 'SIGKILL');
    },
    restart: async () => {
      if (child) await terminate(child, 'SIGKILL');
      await launch();
    },
    stop: async () => {
      if (child) await terminate(child, 'SIGTERM');
    },
  };
}

/**
 * Subscribes to `topic` with `mosquitto_sub` (MQTT 5, QoS 1) as `identity` (default: the subscriber
 * certificate). Mosquitto grants every subscription and filters what it delivers by the ACL: a
 * topic the identity may not read is subscribed but never delivered.
 * Resolves once the broker acknowledged the subscription (at most 30 s). Payloads are read as one
 * hex line each, so payloads containing newlines arrive whole. A subscription does not survive a
 * broker kill or restart: subscribe again after `restart()`. `mosquitto_sub` is killed when the
 * calling process exits.
 */
export async function subscribeTopic(options: SubscribeOptions): Promise<TopicSubscriber> {
  const { broker, pki, topic } = options;
  const identity = options.identity ?? { certFile: pki.subscriberCertFile, keyFile: pki.subscriberKeyFile };
  // stdbuf: mosquitto_sub block-buffers its -d lines on a pipe, and the SUBACK line would come late.
  const child = spawnTracked('stdbuf', [
    '-oL',
    'mosquitto_sub',
    '-h',
    broker.host,
    '-p',
    String(broker.port),
    '-V',
    'mqttv5',
    '-q',
    '1',
    ...(Array.isArray(topic) ? topic : [topic]).flatMap((filter) => ['-t', filter]),
    '--cafile',
    pki.caFile,
    '--cert',
    identity.certFile,
    '--key',
    identity.keyFile,
    '-i',
    `sub-${process.pid}-${Date.now()}`,
    '-d',
    '-F',
    '%x',
  ]);
  const tail = stderrTail(child);
  const messages: Buffer[] = [];
  const waiters = new Set<() => void>();
  let subscribed: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    subscribed = resolve;
  });
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      // With -d, debug lines ("Client … received SUBACK") share stdout with the hex payload lines.
      if (/^[0-9a-f]+$/.test(line)) messages.push(Buffer.from(line, 'hex'));
      else if (line.includes('received SUBACK')) subscribed();
    }
    for (const wake of waiters) wake();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await Promise.race([
    ready,
    exited(child).then(() => {
      throw new Error(`mosquitto_sub ended before subscribing: ${tail()}`);
    }),
  ]);
  clearTimeout(timer);
  return {
    messages,
    waitFor: (count, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (messages.length < count) return;
          clearTimeout(timeout);
          waiters.delete(check);
          resolve(messages);
        };
        const timeout = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`received ${messages.length} of ${count} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stop: () => terminate(child, 'SIGTERM'),
  };
}

/**
 * Publishes `payload` on `topic` with `mosquitto_pub` (MQTT 5, QoS 1) as `identity` (default: the
 * subscriber certificate). Resolves with the PUBACK's reason code: 0 delivered, 0x10 no
 * subscribers, 0x87 (135) refused by the ACL. Rejects when mosquitto_pub fails or takes 30 s.
 */
export async function publishMessage(options: PublishOptions): Promise<number> {
  const { broker, pki, topic, payload } = options;
  const identity = options.identity ?? { certFile: pki.subscriberCertFile, keyFile: pki.subscriberKeyFile };
  const child = spawnTracked('mosquitto_pub', [
    '-h',
    broker.host,
    '-p',
    String(broker.port),
    '-V',
    'mqttv5',
    '-q',
    '1',
    '-t',
    topic,
    '-m',
    payload,
    '--cafile',
    pki.caFile,
    '--cert',
    identity.certFile,
    '--key',
    identity.keyFile,
    '-d',
  ]);
  const tail = stderrTail(child);
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited(child);
  clearTimeout(timer);
  const puback = /received PUBACK \(Mid: \d+, RC:(\d+)\)/.exec(out);
  if (!puback)
    throw new Error(`mosquitto_pub got no PUBACK (exit ${child.exitCode}): ${tail()} ${out.trim()}`);
  return Number(puback[1]);
}
