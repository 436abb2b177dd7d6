import type { CommandModule } from 'yargs';
import { exitStatus, formatResults } from '../doctor/check.js';
import { runDoctor } from '../doctor/doctor.js';
import { type CommonArgs, fail, jsonOption, withConfig } from './common.js';

interface DoctorArgs extends CommonArgs {
  user?: string;
  network?: boolean;
}

async function doctor(args: DoctorArgs): Promise<void> {
  const results = await runDoctor({
    configPath: args.config,
    ...(args.user === undefined ? {} : { user: args.user }),
    ...(args.network === undefined ? {} : { network: args.network }),
  });
  console.log(args.json ? JSON.stringify({ results, status: exitStatus(results) }) : formatResults(results));
  process.exit(exitStatus(results));
}

/** `attache doctor`: every check a technician or support engineer needs on a box, OK/WARN/FAIL each. */
export const doctorCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'doctor',
    describe:
      'check the box: config, file access, certificate, clock, ports, disk, endpoint, crypto self-test',
    builder: (y) =>
      withConfig(y)
        .option('json', jsonOption)
        .option('user', { type: 'string', description: 'the user the service runs as (default attache)' })
        .option('network', {
          type: 'boolean',
          description: 'check the endpoint now (--no-network: never; default: when a window is allowed)',
        }),
    handler: (a) => doctor(a as unknown as DoctorArgs).catch(fail),
  },
];
