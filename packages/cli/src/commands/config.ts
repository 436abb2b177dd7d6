import type { CommandModule } from 'yargs';
import { type CommonArgs, configOption, fail, readCheckedConfig, withConfig } from './common.js';
import type { DirectCommand } from './direct.js';

interface ValidateArgs extends CommonArgs {
  offline: boolean;
}

async function validate(args: ValidateArgs): Promise<void> {
  const { config, warnings } = await readCheckedConfig(args.config, { offline: args.offline });
  console.log(
    `config ${args.config} is valid: gateway ${config.gateway.id}, ${config.devices.length} devices`,
  );
  for (const { path, message } of warnings) console.error(`warning: ${path}: ${message}`);
}

const offlineOption = {
  type: 'boolean',
  default: false,
  description:
    'checking away from the gateway: missing or unreadable certificate, key and port files are warnings, not errors',
} as const;

/**
 * `attache config validate`: loads only the config checks (first-boot provisioning runs it on a slow
 * box, before the service starts).
 */
export const configCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'config',
    describe: 'work with config files',
    builder: (y) =>
      withConfig(y)
        .command(
          'validate',
          'check a config file and list every problem',
          (y) => withConfig(y).option('offline', offlineOption),
          (a) => validate(a).catch(fail),
        )
        .demandCommand(1, 'name a config subcommand'),
    handler: () => undefined,
  },
];

/** `attache config validate` without yargs, for a plain command line (direct.ts). */
export const configDirect: DirectCommand[] = [
  {
    words: ['config', 'validate'],
    options: { config: configOption(), offline: offlineOption },
    run: (a) => validate(a as unknown as ValidateArgs).catch(fail),
  },
];
