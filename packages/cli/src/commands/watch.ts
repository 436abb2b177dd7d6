import { controlRequest, gatewayPaths } from '@attache/gateway';
import type { LiveReading } from '@attache/technician';
import type { CommandModule } from 'yargs';
import { becomeDataDirOwner } from '../privileges.js';
import { type CommonArgs, fail, printable, readConfig, withConfig } from './common.js';

interface WatchArgs extends CommonArgs {
  device?: string;
}

/** The longest timer Node allows: a watch waits for readings without a deadline of its own. */
const forever = 2 ** 31 - 1;

/** One device's latest reading on one line: `spo2-bed7  10:00:05  SpO₂ 97 %  Pulse rate 72 /min`. */
export function readingLine(reading: LiveReading): string {
  const time = reading.capturedAt.slice(11, 19);
  const values = reading.observations.map((o) => {
    const value = o.value === null ? '—' : String(o.value);
    const unit = o.unit === null || o.unit === '1' ? '' : ` ${o.unit}`;
    return `${o.name} ${value}${unit}${o.status === 'valid' ? '' : ` (${o.status})`}`;
  });
  return `${reading.deviceId}  ${time}  ${values.join('  ')}`;
}

/**
 * Keeps one line per device on a terminal, rewritten in place as readings arrive (the cursor moves
 * up over the lines drawn before and each line is cleared first).
 */
export function inPlace(write: (text: string) => void): (reading: LiveReading) => void {
  const lines = new Map<string, string>();
  return (reading) => {
    const drawn = lines.size;
    lines.set(reading.deviceId, printable(readingLine(reading)));
    const up = drawn > 0 ? `\x1b[${drawn}A` : '';
    write(`${up}${[...lines.values()].map((l) => `\r\x1b[2K${l}\n`).join('')}`);
  };
}

async function watch(args: WatchArgs): Promise<void> {
  const cfg = await readConfig(args.config);
  await becomeDataDirOwner(cfg.gateway.dataDir);
  const show = process.stdout.isTTY
    ? inPlace((text) => process.stdout.write(text))
    : (reading: LiveReading) => process.stdout.write(`${JSON.stringify(reading)}\n`);
  if (process.stdout.isTTY) console.error('waiting for readings (Ctrl-C ends)…');
  await controlRequest(gatewayPaths(cfg).socket, 'watch', forever, {
    onEvent: (event) => {
      const reading = (event as { reading: LiveReading }).reading;
      if (args.device === undefined || reading.deviceId === args.device) show(reading);
    },
  });
}

/** `attache watch [--device ID]`. */
export const watchCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'watch',
    describe: 'show live de-identified readings of each device (JSON lines when not a terminal)',
    builder: (y) => withConfig(y).option('device', { type: 'string', description: 'only this device id' }),
    handler: (a) => watch(a as unknown as WatchArgs).catch(fail),
  },
];
