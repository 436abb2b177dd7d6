import { loadOrCreateSecret, rotateSecret, technicianSecretPath } from '@attache/technician';
import type { CommandModule } from 'yargs';
import { becomeDataDirOwner } from '../privileges.js';
import { type CommonArgs, fail, readConfig, withConfig } from './common.js';

async function secretCommand(args: CommonArgs, rotate: boolean): Promise<void> {
  const cfg = await readConfig(args.config);
  // Written as the data directory's owner, so the gateway (the service's user) can read it.
  await becomeDataDirOwner(cfg.gateway.dataDir);
  const path = technicianSecretPath(cfg.gateway.dataDir);
  const secret = rotate ? await rotateSecret(path) : await loadOrCreateSecret(path);
  console.log(secret);
  if (rotate) console.error('every technician page session made with the old secret has ended');
  if (!cfg.technician) console.error('the technician page is off: add a `technician` section to the config');
}

/** `attache technician secret` and `technician rotate-secret`. */
export const technicianCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'technician',
    describe: "the technician page's box secret",
    builder: (y) =>
      withConfig(y)
        .command(
          'secret',
          'print the box secret a technician logs in to the page with (created when there is none)',
          withConfig,
          (a) => secretCommand(a, false).catch(fail),
        )
        .command(
          'rotate-secret',
          'replace the box secret with a new one and print it: every page session ends',
          withConfig,
          (a) => secretCommand(a, true).catch(fail),
        )
        .demandCommand(1, 'name a technician subcommand'),
    handler: () => undefined,
  },
];
