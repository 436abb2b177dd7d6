import { networkInterfaces } from 'node:os';
import { isGatewayError } from '@attache/core';
import { controlRequest, type GatewayStatus, gatewayPaths } from '@attache/gateway';
import { readSecret, technicianSecretPath } from '@attache/technician';
import type { CommandModule } from 'yargs';
import { consoleScreen } from '../console-screen.js';
import { becomeDataDirOwner } from '../privileges.js';
import { provisioningFile, readProvisioning } from '../provisioning.js';
import { type CommonArgs, fail, readConfig, withConfig } from './common.js';

interface ConsoleArgs extends CommonArgs {
  once: boolean;
  every: number;
}

async function draw(args: ConsoleArgs): Promise<string> {
  const config = await readConfig(args.config);
  const status = (await controlRequest(gatewayPaths(config).socket, 'status', 5000).catch((err: unknown) => {
    if (isGatewayError(err)) return undefined;
    throw err;
  })) as GatewayStatus | undefined;
  const provisioning = await readProvisioning(provisioningFile());
  const secret = config.technician
    ? await readSecret(technicianSecretPath(config.gateway.dataDir)).catch(() => undefined)
    : undefined;
  const lines = consoleScreen({
    config,
    status,
    provisioning: provisioning?.state,
    secret,
    interfaces: networkInterfaces(),
    now: new Date(),
  });
  return `${lines.join('\n')}\n`;
}

async function consoleCommand(args: ConsoleArgs): Promise<void> {
  await becomeDataDirOwner((await readConfig(args.config)).gateway.dataDir);
  if (args.once) {
    process.stdout.write(await draw(args));
    return;
  }
  for (;;) {
    // Home and clear, then the screen: the console shows the latest state only.
    process.stdout.write(`\x1b[H\x1b[2J${await draw(args)}`);
    await new Promise((resolve) => setTimeout(resolve, args.every * 1000));
  }
}

/** `attache console [--once] [--every S]`: the HDMI console's status screen (attache-console.service). */
export const consoleCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'console',
    describe:
      'a refreshing status screen for the HDMI console: devices, backlog, addresses, the technician page',
    builder: (y) =>
      withConfig(y)
        .option('once', { type: 'boolean', default: false, description: 'print the screen once and exit' })
        .option('every', { type: 'number', default: 5, description: 'seconds between refreshes' }),
    handler: (a) => consoleCommand(a as unknown as ConsoleArgs).catch(fail),
  },
];
