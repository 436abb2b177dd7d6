import type { GatewayStatus } from '@attache/gateway';
import type { CommandModule } from 'yargs';
import { becomeDataDirOwner } from '../privileges.js';
import { formatProvisioning, provisioningFile, readClaimStatus, readProvisioning } from '../provisioning.js';
import { formatStatus } from '../report.js';
import {
  type CommonArgs,
  configOption,
  fail,
  jsonOption,
  printable,
  readConfig,
  viaGateway,
  withConfig,
} from './common.js';
import type { DirectCommand } from './direct.js';

// A group of its own (not with `run` and `sync` in gateway.ts): the release starts `attache status`
// from a bundle that holds only this group's code (scripts/bundle.mjs, compiled-start.ts).

async function status(args: CommonArgs): Promise<void> {
  const provisioning = await readProvisioning(provisioningFile());
  // An appliance that cannot run (not provisioned, a refused bundle) still says why.
  const cfg = await readConfig(
    args.config,
    provisioning ? formatProvisioning(provisioning).join('\n') : undefined,
  );
  await becomeDataDirOwner(cfg.gateway.dataDir);
  const gateway = await viaGateway<GatewayStatus>(cfg, 'status', 10_000, async () =>
    (await import('@attache/gateway/stored-status')).readStoredStatus(cfg),
  );
  const claim = await readClaimStatus(cfg);
  const report = {
    ...gateway,
    ...(provisioning ? { provisioning } : {}),
    ...(claim ? { fleetProvisioning: claim } : {}),
  };
  console.log(args.json ? JSON.stringify(report) : printable(formatStatus(report)));
  process.exit(0);
}

/** `attache status`. */
export const statusCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'status',
    describe: 'show backlog, last window and adapters',
    builder: (y) => withConfig(y).option('json', jsonOption),
    handler: (a) => status(a).catch(fail),
  },
];

/** `attache status` without yargs, for a plain command line (direct.ts). */
export const statusDirect: DirectCommand[] = [
  {
    words: ['status'],
    options: { config: configOption(), json: jsonOption },
    run: (a) => status(a as unknown as CommonArgs).catch(fail),
  },
];
