import { isGatewayError, nullLogger, type WindowResult } from '@attache/core';
import type { CommandModule } from 'yargs';
import { Gateway, type GatewayStatus, openCache, readStatus } from '../gateway.js';
import { createLogger } from '../log.js';
import { formatProvisioning, provisioningFile, readProvisioning } from '../provisioning.js';
import { formatStatus, formatWindow } from '../report.js';
import { SystemdNotifier } from '../systemd.js';
import { WindowRunner } from '../window-runner.js';
import {
  type CommonArgs,
  exitConfig,
  fail,
  jsonOption,
  readConfig,
  viaGateway,
  withConfig,
} from './common.js';

async function run(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  const log = createLogger(cfg.log.level);
  const gateway = new Gateway({ config: cfg, logger: log });
  // Under systemd (Type=notify, WatchdogSec=): READY=1 once started, STOPPING=1, watchdog pings.
  const systemd = new SystemdNotifier({ logger: log.child({ module: 'systemd' }) });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    Promise.all([systemd.stopping(), gateway.stop()]).then(
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
  await systemd.ready();
  systemd.startWatchdog();
}

async function sync(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
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
  const provisioning = await readProvisioning(provisioningFile());
  // An appliance that cannot run (not provisioned, a refused bundle) still says why.
  const cfg = await readConfig(
    args.config,
    provisioning ? formatProvisioning(provisioning).join('\n') : undefined,
  );
  const gateway = await viaGateway<GatewayStatus>(cfg, 'status', 10_000, async () => {
    const cache = await openCache(cfg, nullLogger);
    try {
      return await readStatus(cfg, cache, new WindowRunner({ config: cfg, cache, logger: nullLogger }));
    } finally {
      await cache.close();
    }
  });
  const report = provisioning ? { ...gateway, provisioning } : gateway;
  console.log(args.json ? JSON.stringify(report) : formatStatus(report));
  process.exit(0);
}

async function validate(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  console.log(`config ${args.config} is valid: gateway ${cfg.gateway.id}, ${cfg.devices.length} devices`);
}

/** `attache run`, `sync`, `status` and `config validate`. */
export const gatewayCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'run',
    describe: 'run the gateway: read devices, cache, upload in windows',
    builder: withConfig,
    handler: (a) => run(a).catch(fail),
  },
  {
    command: 'sync',
    describe: 'open a connectivity window now and upload the backlog',
    builder: (y) => withConfig(y).option('json', jsonOption),
    handler: (a) => sync(a).catch(fail),
  },
  {
    command: 'status',
    describe: 'show backlog, last window and adapters',
    builder: (y) => withConfig(y).option('json', jsonOption),
    handler: (a) => status(a).catch(fail),
  },
  {
    command: 'config',
    describe: 'work with config files',
    builder: (y) =>
      withConfig(y)
        .command('validate', 'check a config file and list every problem', withConfig, (a) =>
          validate(a).catch(fail),
        )
        .demandCommand(1, 'name a config subcommand'),
    handler: () => undefined,
  },
];
