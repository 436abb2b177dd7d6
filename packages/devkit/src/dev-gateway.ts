#!/usr/bin/env node
// `make run`: the gateway on its embedded defaults, with no hardware and no AWS account. A simulated
// Nonin pulse oximeter writes to one end of a socat pty pair, `attache run` reads the other end, and a
// local mosquitto with mutual TLS stands in for AWS IoT Core; a subscriber plays the dashboard and
// prints the values, events and state it receives. Everything lives in ./.dev; Ctrl-C stops it all.
// Usage: `dev-gateway.js ATTACHE_BIN`, the `attache` command to run (`make run` gives the built one).
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type MosquittoBroker, startMosquitto, subscribeTopic, uplinkSettings } from './broker.js';
import { batchLines, eventLine, stateLine } from './dashboard.js';
import { createTestPki, type TestPki } from './pki.js';
import { openPtyPair } from './pty.js';
import { LineDeviceSimulator, profileFormat } from './simulator.js';

const thingName = 'attache-dev';
const root = resolve(process.env.ATTACHE_DEV_DIR ?? '.dev');
/** The `attache` command (the devkit depends on no package above `core`, so it is told where it is). */
const cliBin = process.argv[2] ?? '';

/** The embedded default config: one Nonin oximeter on the pty, a window every 15 s to the local broker. */
function devConfig(devicePath: string, broker: MosquittoBroker, pki: TestPki) {
  return {
    version: 1,
    gateway: { id: thingName, dataDir: join(root, 'data') },
    log: { level: 'info' },
    devices: [
      {
        id: 'spo2-bed1',
        adapter: 'rs232',
        port: {
          path: devicePath,
          baudRate: 9600,
          dataBits: 8,
          parity: 'none',
          stopBits: 2,
          delimiter: '\r\n',
        },
        format: profileFormat('nonin'),
      },
    ],
    uplink: {
      ...uplinkSettings(broker, pki),
      // Mosquitto serves no HTTPS `Date` (AWS IoT Core's port 8443): each window would warn.
      trustedTime: { enabled: false },
      window: { everySeconds: 15, jitterSeconds: 0, maxDurationSeconds: 60 },
    },
  };
}

async function main(): Promise<void> {
  if (!cliBin) {
    console.error('usage: dev-gateway.js ATTACHE_BIN (the attache command, e.g. packages/cli/dist/bin.js)');
    process.exit(64);
  }
  await mkdir(root, { recursive: true, mode: 0o700 });
  const pki = await createTestPki(join(root, 'pki'), { thingName });
  const broker = await startMosquitto({ dir: join(root, 'broker'), pki });
  const pty = await openPtyPair(join(root, 'pty'));
  const simulator = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin', intervalMs: 1000 });
  await simulator.open();
  simulator.start();
  const topics = {
    telemetry: batchLines,
    events: (m: Buffer) => [eventLine(m)],
    state: (m: Buffer) => [stateLine(m)],
  };
  const dashboards = await Promise.all(
    Object.entries(topics).map(async ([kind, lines]) => ({
      subscriber: await subscribeTopic({ broker, pki, topic: `dt/attache/${thingName}/${kind}` }),
      lines,
      shown: 0,
    })),
  );
  const configPath = join(root, 'config.json');
  await writeFile(configPath, `${JSON.stringify(devConfig(pty.gatewayPath, broker, pki), null, 2)}\n`);

  console.log(
    `attache dev: simulated Nonin oximeter on ${pty.gatewayPath}, mTLS broker on localhost:${broker.port}`,
  );
  console.log(`attache dev: config ${configPath}; in another terminal:`);
  console.log(`  ${cliBin} status --config ${configPath}    (or: make status)`);
  console.log(`  ${cliBin} sync --config ${configPath}      (or: make sync)`);
  console.log('attache dev: a window every 15 s; the dashboard stand-in prints what reaches the broker');

  // The dashboard stand-in: values of each batch, each event, the state of each window.
  const printer = setInterval(() => {
    for (const dashboard of dashboards) {
      const { messages } = dashboard.subscriber;
      for (; dashboard.shown < messages.length; dashboard.shown++) {
        for (const line of dashboard.lines(messages[dashboard.shown] as Buffer)) console.log(line);
      }
    }
  }, 500);

  // Run as installed: through the binary's shebang, with its V8 memory flags.
  const gateway = spawn(cliBin, ['run', '--config', configPath], { stdio: 'inherit' });
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    if (gateway.exitCode === null) {
      gateway.kill('SIGTERM');
      await new Promise((r) => gateway.once('exit', r));
    }
    clearInterval(printer);
    simulator.stop();
    await simulator.close();
    await pty.close();
    for (const { subscriber } of dashboards) await subscriber.stop();
    await broker.stop();
    process.exit(gateway.exitCode ?? 0);
  };
  gateway.once('exit', () => void stopAll());
  process.on('SIGINT', () => void stopAll());
  process.on('SIGTERM', () => void stopAll());
}

await main();
