#!/usr/bin/env -S node --v8-pool-size=1 --max-semi-space-size=1
// The V8 flags keep the long-running gateway small on a Pi (one V8 helper thread, 1 MB young
// generation): idle RSS 63 MB instead of 68 MB, for ~25 % more CPU per record (see bench/README.md).
import {
  type AttacheConfig,
  GatewayError,
  isGatewayError,
  nullLogger,
  type WindowResult,
} from '@attache/core';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { defaultConfigPath, loadConfig } from './config-file.js';
import { controlRequest } from './control.js';
import { Gateway, type GatewayStatus, gatewayPaths, openCache, readStatus } from './gateway.js';
import { createLogger } from './log.js';
import { formatIssues, formatStatus, formatWindow } from './report.js';
import { WindowRunner } from './window-runner.js';

const exitConfig = 78;

interface CommonArgs {
  config: string;
  json?: boolean;
}

function withConfig<T>(y: Argv<T>) {
  return y.option('config', {
    alias: 'c',
    type: 'string',
    description: 'config file (JSON)',
    default: process.env.ATTACHE_CONFIG ?? defaultConfigPath,
  });
}

async function config(path: string): Promise<AttacheConfig> {
  try {
    return await loadConfig(path);
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) {
      console.error(formatIssues(path, err.issues));
      process.exit(exitConfig);
    }
    throw err;
  }
}

async function run(args: CommonArgs): Promise<void> {
  const cfg = await config(args.config);
  const log = createLogger(cfg.log.level);
  const gateway = new Gateway({ config: cfg, logger: log });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    gateway.stop().then(
      // The AWS CRT client may keep the event loop alive after close: exit explicitly.
      () => process.exit(0),
      (err: unknown) => {
        log.fatal({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await gateway.start();
  } catch (err) {
    log.fatal({ err }, 'gateway failed to start');
    await gateway.stop().catch(() => undefined);
    process.exit(isGatewayError(err, 'ATTACHE_CONFIG_INVALID') ? exitConfig : 1);
  }
}

/** Asks the running gateway, or does it here when none runs. */
async function viaGateway<T>(
  cfg: AttacheConfig,
  method: string,
  timeoutMs: number,
  local: () => Promise<T>,
): Promise<T> {
  try {
    return (await controlRequest(gatewayPaths(cfg).socket, method, timeoutMs)) as T;
  } catch (err) {
    if (isGatewayError(err, 'ATTACHE_CONTROL_UNAVAILABLE')) return local();
    throw err;
  }
}

async function sync(args: CommonArgs): Promise<void> {
  const cfg = await config(args.config);
  const timeoutMs = ((cfg.uplink?.window.maxDurationSeconds ?? 0) + 120) * 1000;
  const result = await viaGateway<WindowResult>(cfg, 'sync', timeoutMs, async () => {
    const log = createLogger(cfg.log.level, false);
    const cache = await openCache(cfg, log);
    try {
      return await new WindowRunner({ config: cfg, cache, logger: log }).run();
    } finally {
      await cache.close();
    }
  });
  console.log(args.json ? JSON.stringify(result) : formatWindow(result));
  process.exit(result.outcome === 'drained' ? 0 : result.outcome === 'deadline' ? 2 : 1);
}

async function status(args: CommonArgs): Promise<void> {
  const cfg = await config(args.config);
  const report = await viaGateway<GatewayStatus>(cfg, 'status', 10_000, async () => {
    const cache = await openCache(cfg, nullLogger);
    try {
      return await readStatus(cfg, cache, new WindowRunner({ config: cfg, cache, logger: nullLogger }));
    } finally {
      await cache.close();
    }
  });
  console.log(args.json ? JSON.stringify(report) : formatStatus(report));
  process.exit(0);
}

async function validate(args: CommonArgs): Promise<void> {
  const cfg = await config(args.config);
  console.log(`config ${args.config} is valid: gateway ${cfg.gateway.id}, ${cfg.devices.length} devices`);
}

function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof GatewayError ? `${err.code}: ` : '';
  console.error(`attache: ${code}${message}`);
  process.exit(1);
}

const json = { type: 'boolean', description: 'print JSON for scripts', default: false } as const;

await yargs(hideBin(process.argv))
  .scriptName('attache')
  .usage('$0 <command> [options]')
  .command('run', 'run the gateway: read devices, cache, upload in windows', withConfig, (a) =>
    run(a).catch(fail),
  )
  .command(
    'sync',
    'open a connectivity window now and upload the backlog',
    (y) => withConfig(y).option('json', json),
    (a) => sync(a).catch(fail),
  )
  .command(
    'status',
    'show backlog, last window and adapters',
    (y) => withConfig(y).option('json', json),
    (a) => status(a).catch(fail),
  )
  .command('config', 'work with config files', (y) =>
    y
      .command('validate', 'check a config file and list every problem', withConfig, (a) =>
        validate(a).catch(fail),
      )
      .demandCommand(1, 'name a config subcommand'),
  )
  .demandCommand(1, 'name a command')
  .strict()
  .help()
  .parseAsync();
