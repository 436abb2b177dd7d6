import { isGatewayError, systemClock, type WindowResult } from '@attache/core';
import type { Gateway, SystemdNotifier } from '@attache/gateway';
import { gatewayPaths } from '@attache/gateway/client';
import type { CommandModule } from 'yargs';
import { becomeDataDirOwner } from '../privileges.js';
import { formatWindow } from '../report.js';
import {
  type CommonArgs,
  configOption,
  exitConfig,
  fail,
  jsonOption,
  printable,
  readCheckedConfig,
  readConfig,
  viaGateway,
  withConfig,
} from './common.js';
import type { DirectCommand } from './direct.js';

async function run(args: CommonArgs): Promise<void> {
  // Loaded here, not at the top: it imports the gateway and the jobs, which `status` and `sync`
  // (asking a running gateway) do without.
  const { currentRelease, exitRestart, installRoot, ReleaseTrialCheck, releaseInstaller, releaseOnTrial } =
    await import('../release-trial-check.js');
  // 78 is never restarted; a new release on trial that refuses the config exits 1 instead, so that
  // the unit restarts it and its rollback guard counts the failed start.
  // The same check as `attache config validate`, files and ports included: the two never disagree.
  const { config: cfg, warnings } = await readCheckedConfig(args.config, {
    exitCode: (await releaseOnTrial()) ? 1 : exitConfig,
  });
  await becomeDataDirOwner(cfg.gateway.dataDir);
  // Loaded here, not at the top: `attache status` and `attache sync` start without the gateway's modules.
  const { createLogger, Gateway, SystemdNotifier, statusLine } = await import('@attache/gateway/run');
  const log = createLogger(cfg.log.level);
  for (const { path, message } of warnings) log.warn({ path }, message);
  const root = installRoot();
  const installer = releaseInstaller();
  // Under systemd (Type=notify, WatchdogSec=): READY=1 once started, STOPPING=1, watchdog pings.
  const systemd = new SystemdNotifier({ logger: log.child({ module: 'systemd' }) });
  let stopping = false;
  const stop = (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    Promise.all([systemd.stopping(), gateway.stop()]).then(
      // The AWS CRT client may keep the event loop alive after close: exit explicitly.
      () => process.exit(code),
      (err: unknown) => {
        log.fatal({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  // A software update switched `current`: the supervisor (systemd: RestartForceExitStatus) starts it.
  const gateway = new Gateway({
    config: cfg,
    logger: log,
    configPath: args.config,
    ...(root === undefined ? {} : { installRoot: root }),
    ...(installer === undefined ? {} : { releaseInstaller: installer }),
    onRestart: () => stop('restart', exitRestart),
    page: async (config, logger, context) =>
      (await import('../technician-host.js')).startTechnicianPage(config, logger, context),
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const trial =
    root === undefined
      ? undefined
      : new ReleaseTrialCheck({ root, dataDir: cfg.gateway.dataDir, logger: log });
  try {
    await gateway.start();
    log.info({ release: (await currentRelease(root)) ?? null }, 'running');
    await trial?.confirm(gatewayPaths(cfg).socket);
  } catch (err) {
    log.fatal({ err }, 'gateway failed to start');
    await gateway.stop().catch(() => undefined);
    // The first start of a new release: back to the previous one, which the supervisor starts.
    const rolledBack = await trial?.rollBack((err as Error).message).catch((e: unknown) => {
      log.error({ err: e }, 'release rollback failed');
      return false;
    });
    if (rolledBack) process.exit(exitRestart);
    process.exit(isGatewayError(err, 'ATTACHE_CONFIG_INVALID') ? exitConfig : 1);
  }
  await systemd.ready(statusLine(await gateway.status()));
  systemd.startWatchdog();
  if (systemd.enabled) await reportStatus(gateway, systemd);
}

/** How often the STATUS= line is refreshed (sent only when it changed), ms. */
const statusEveryMs = 15_000;

/** Keeps systemd's STATUS= line current: devices connected, backlog, last window. */
async function reportStatus(gateway: Gateway, systemd: SystemdNotifier): Promise<void> {
  const { every, statusLine } = await import('@attache/gateway/run');
  every(systemClock, statusEveryMs, () => {
    gateway.status().then(
      (status) => systemd.status(statusLine(status)),
      () => undefined,
    );
  });
}

async function sync(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  await becomeDataDirOwner(cfg.gateway.dataDir);
  const timeoutMs = ((cfg.uplink?.window.maxDurationSeconds ?? 0) + 120) * 1000;
  const result = await viaGateway<WindowResult>(cfg, 'sync', timeoutMs, async () => {
    const { createLogger, openCache, WindowRunner } = await import('@attache/gateway');
    // stdout is the answer (`--json`: only JSON); the logs of this window go to stderr.
    const log = createLogger(cfg.log.level, { pretty: false, fd: 2 });
    const cache = await openCache(cfg, log);
    try {
      return await new WindowRunner({ config: cfg, cache, logger: log, logFd: 2 }).run();
    } finally {
      await cache.close();
    }
  });
  console.log(args.json ? JSON.stringify(result) : printable(formatWindow(result)));
  process.exit(result.outcome === 'drained' ? 0 : result.outcome === 'deadline' ? 2 : 1);
}

/** `attache run` and `sync` (`status` is a group of its own: commands/status.ts). */
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
];

/** `attache run` without yargs, for a plain command line (direct.ts): the service then never loads it. */
export const gatewayDirect: DirectCommand[] = [
  {
    words: ['run'],
    options: { config: configOption() },
    run: (a) => run(a as unknown as CommonArgs).catch(fail),
  },
];
