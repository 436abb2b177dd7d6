import type { CommandModule } from 'yargs';
import { configAdvice } from '../config-advice.js';
import { type CommonArgs, fail, readConfig, withConfig } from './common.js';

async function validate(args: CommonArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  console.log(`config ${args.config} is valid: gateway ${cfg.gateway.id}, ${cfg.devices.length} devices`);
  for (const { path, message } of configAdvice(cfg)) console.error(`warning: ${path}: ${message}`);
}

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
        .command('validate', 'check a config file and list every problem', withConfig, (a) =>
          validate(a).catch(fail),
        )
        .demandCommand(1, 'name a config subcommand'),
    handler: () => undefined,
  },
];
