import { writeFile } from 'node:fs/promises';
import { isGatewayError } from '@attache/core';
import type { CommandModule } from 'yargs';
import { firewallRuleset } from '../firewall.js';
import { formatIssues } from '../report.js';
import { type CommonArgs, exitConfig, fail, readConfig, withConfig } from './common.js';

interface FirewallArgs extends CommonArgs {
  print: boolean;
  output?: string;
}

async function firewall(args: FirewallArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  let ruleset: string;
  try {
    ruleset = firewallRuleset(cfg, args.config);
  } catch (err) {
    if (!isGatewayError(err, 'ATTACHE_CONFIG_INVALID')) throw err;
    console.error(formatIssues(args.config, err.issues));
    process.exit(exitConfig);
  }
  if (args.output !== undefined) await writeFile(args.output, ruleset, { mode: 0o644 });
  if (args.print || args.output === undefined) process.stdout.write(ruleset);
}

/** `attache firewall`: the nftables ruleset made from the config (applied at boot by attache-firewall.service). */
export const firewallCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'firewall',
    describe:
      'print the nftables ruleset made from the config (listeners from their allow-lists, SSH from sshFrom)',
    builder: (y) =>
      withConfig(y)
        .option('print', { type: 'boolean', description: 'print the ruleset on stdout', default: false })
        .option('output', { alias: 'o', type: 'string', description: 'write the ruleset to this file' }),
    handler: (a) => firewall(a as unknown as FirewallArgs).catch(fail),
  },
];
