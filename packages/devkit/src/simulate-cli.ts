#!/usr/bin/env node
// Runs a simulated bedside device on a serial path until SIGTERM/SIGINT:
//   node packages/devkit/dist/simulate-cli.js --path .dev/pty/device --profile nonin --interval 1000
// `--profile medibus` (a Dräger ventilator) and `--profile intellivue` (a Philips monitor) answer the
// gateway's requests instead of sending lines.
import { parseArgs } from 'node:util';
import type { Logger } from '@attache/core';
import { IntelliVueMonitorSimulator } from './intellivue-monitor.js';
import { MedibusDeviceSimulator } from './medibus-device.js';
import { type DeviceProfile, LineDeviceSimulator } from './simulator.js';

const usage =
  'usage: simulate-cli --path <serial path> [--profile nonin|masimo|medibus|intellivue] [--interval ms] [--baud rate] [--seed n]';

/** Runs a device that answers requests (MEDIBUS, IntelliVue) until SIGTERM/SIGINT. */
async function answering(profile: 'medibus' | 'intellivue', path: string, baudRate: number): Promise<void> {
  const simulator =
    profile === 'medibus'
      ? new MedibusDeviceSimulator({ path, baudRate })
      : new IntelliVueMonitorSimulator({ path });
  await simulator.open();
  console.log(`simulator: ${profile} on ${path}, answering`);
  const shutdown = async (): Promise<void> => {
    await simulator.close();
    console.log('simulator: stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
}

function positiveInt(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new TypeError(`"--${name}" must be a positive integer`);
  return value;
}

const consoleLogger: Logger = {
  fatal: (...args: unknown[]) => console.error('simulator:', ...args),
  error: (...args: unknown[]) => console.error('simulator:', ...args),
  warn: (...args: unknown[]) => console.error('simulator:', ...args),
  info: () => {},
  debug: () => {},
  trace: () => {},
  child: () => consoleLogger,
  isLevelEnabled: (level) => ['fatal', 'error', 'warn'].includes(level),
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      path: { type: 'string' },
      profile: { type: 'string', default: 'nonin' },
      interval: { type: 'string', default: '1000' },
      baud: { type: 'string', default: '9600' },
      seed: { type: 'string', default: '1' },
    },
  });
  const profiles = ['nonin', 'masimo', 'medibus', 'intellivue'];
  if (values.path === undefined || !profiles.includes(values.profile)) {
    console.error(usage);
    process.exit(2);
  }
  if (values.profile === 'medibus' || values.profile === 'intellivue') {
    await answering(values.profile, values.path, positiveInt('baud', values.baud));
    return;
  }
  const simulator = new LineDeviceSimulator({
    path: values.path,
    profile: values.profile as DeviceProfile,
    intervalMs: positiveInt('interval', values.interval),
    baudRate: positiveInt('baud', values.baud),
    seed: positiveInt('seed', values.seed),
    logger: consoleLogger,
  });
  await simulator.open();
  simulator.start();
  console.log(`simulator: ${values.profile} on ${values.path} every ${values.interval} ms`);
  const shutdown = async (): Promise<void> => {
    await simulator.close();
    console.log(`simulator: stopped after ${simulator.sent} lines`);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
}

main().catch((err: unknown) => {
  console.error('simulator:', err instanceof Error ? err.message : err);
  process.exit(1);
});
