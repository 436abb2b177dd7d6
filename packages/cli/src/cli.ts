import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import type { CommonArgs } from './commands/args.js';
import { type DirectCommand, directArgs } from './commands/direct.js';

type Commands = CommandModule<object, CommonArgs>[];

// Each command group lives in its own module under commands/, loaded only when its command is
// named (all of them for help or a mistake): a Pi under load starts `attache config validate` or
// `attache ports --rescan` without importing the gateway, the cache or the serial libraries.
const groups: Record<string, () => Promise<Commands>> = {
  gateway: async () => (await import('./commands/gateway.js')).gatewayCommands,
  status: async () => (await import('./commands/status.js')).statusCommands,
  config: async () => (await import('./commands/config.js')).configCommands,
  modbus: async () => (await import('./commands/modbus.js')).modbusCommands,
  cache: async () => (await import('./commands/cache.js')).cacheCommands,
  files: async () => (await import('./commands/files.js')).filesCommands,
  ports: async () => (await import('./commands/ports.js')).portsCommands,
  probe: async () => (await import('./commands/probe.js')).probeCommands,
  firewall: async () => (await import('./commands/firewall.js')).firewallCommands,
  doctor: async () => (await import('./commands/doctor.js')).doctorCommands,
  technician: async () => (await import('./commands/technician.js')).technicianCommands,
  watch: async () => (await import('./commands/watch.js')).watchCommands,
  console: async () => (await import('./commands/console.js')).consoleCommands,
};
const groupOf: Record<string, string> = { run: 'gateway', sync: 'gateway' };
/** The commands that may start without yargs (commands/direct.ts), by the group they are in. */
const directs: Record<string, () => Promise<DirectCommand[]>> = {
  config: async () => (await import('./commands/config.js')).configDirect,
  status: async () => (await import('./commands/status.js')).statusDirect,
  modbus: async () => (await import('./commands/modbus.js')).modbusDirect,
  run: async () => (await import('./commands/gateway.js')).gatewayDirect,
};

/** The command line as yargs reads it, with the command groups it needs loaded (all for help or a mistake). */
export async function parser(argv: string[]) {
  const named = argv[0] === undefined ? undefined : (groupOf[argv[0]] ?? argv[0]);
  const one = named === undefined ? undefined : groups[named];
  const commands = (await Promise.all((one ? [one] : Object.values(groups)).map((group) => group()))).flat();
  // The release's version, from the package.json beside dist/ (in the shipped bundle too, where yargs
  // would look for one from the working directory up).
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  // Imported here: a command line taken without yargs (commands/direct.ts) never loads it.
  const { default: yargs } = await import('yargs');
  return yargs(argv)
    .scriptName('attache')
    .version(version)
    .usage('$0 <command> [options]')
    .command(commands)
    .demandCommand(1, 'name a command')
    .strict()
    .help();
}

/** Runs the command this process was started with (`attache <command> …`). */
export async function main(): Promise<void> {
  // What yargs' hideBin gives under Node: the words after the script.
  const argv = process.argv.slice(2);
  const direct = argv[0] === undefined ? undefined : directs[argv[0]];
  for (const command of direct ? await direct() : []) {
    const args = directArgs(command, argv);
    if (args !== undefined) return command.run(args);
  }
  await (await parser(argv)).parseAsync();
}
