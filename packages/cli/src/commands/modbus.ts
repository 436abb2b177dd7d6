import type { ModbusTable, ReadRegistersOptions, resolveRef } from '@attache/adapter-modbus';
import type { ModbusBus } from '@attache/core';
import type { CommandModule } from 'yargs';
import { type CommonArgs, fail, jsonOption } from './common.js';

interface ReadArgs {
  bus: string;
  baud: number;
  parity: string;
  stopBits: number;
  unit: number;
  table?: string;
  address?: number;
  ref?: string;
  count: number;
  type?: string;
  order: string;
  length?: number;
  timeout: number;
  json?: boolean;
}

const tables: Record<string, ModbusTable> = {
  holding: 'holding-register',
  input: 'input-register',
  coil: 'coil',
  discrete: 'discrete-input',
};
const types = [
  'bool',
  'bit',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'float32',
  'int64',
  'uint64',
  'float64',
  'string',
];
const prefixes: Record<ModbusTable, string> = {
  coil: 'co',
  'discrete-input': 'di',
  'input-register': 'ir',
  'holding-register': 'hr',
};

/** `tcp://host[:port]` (default port 502) or a serial device path. */
export function parseBus(args: Pick<ReadArgs, 'bus' | 'baud' | 'parity' | 'stopBits'>): ModbusBus {
  if (args.bus.startsWith('tcp://')) {
    const url = new URL(args.bus);
    return { transport: 'tcp', host: url.hostname, port: url.port ? Number(url.port) : 502 };
  }
  return {
    transport: 'rtu',
    path: args.bus,
    baudRate: args.baud as Extract<ModbusBus, { transport: 'rtu' }>['baudRate'],
    dataBits: 8,
    parity: args.parity as 'none' | 'even' | 'odd',
    stopBits: args.stopBits === 2 ? 2 : 1,
  };
}

/** The read the arguments ask for; a TypeError for a missing or contradictory location. */
function request(args: ReadArgs, resolve: typeof resolveRef): ReadRegistersOptions {
  let table: ModbusTable | undefined;
  let address: number | undefined;
  if (args.ref !== undefined) {
    const at = resolve(args.ref);
    if (at === undefined) throw new TypeError(`--ref ${args.ref} is not a 1-based reference like 40001`);
    ({ table, address } = at);
  } else if (args.table !== undefined && args.address !== undefined) {
    table = tables[args.table];
    address = args.address;
  }
  if (table === undefined || address === undefined)
    throw new TypeError('give --ref, or --table and --address');
  const options: ReadRegistersOptions = {
    bus: parseBus(args),
    unitId: args.unit,
    table,
    address,
    count: args.count,
    order: args.order as ReadRegistersOptions['order'] & string,
    timeoutMs: args.timeout,
  };
  if (args.type !== undefined) options.type = args.type as ReadRegistersOptions['type'] & string;
  if (args.length !== undefined) options.length = args.length;
  return options;
}

async function read(args: ReadArgs): Promise<void> {
  // Loaded here, not with the CLI: modbus-serial is needed by this command only.
  const modbus = await import('@attache/adapter-modbus');
  const options = request(args, modbus.resolveRef);
  const result = await modbus.readRegisters(options);
  const type =
    options.type ?? (options.table === 'coil' || options.table === 'discrete-input' ? 'bool' : 'uint16');
  const step = result.words.length / result.values.length;
  const rows = result.values.map((value, i) => ({
    path: `${prefixes[options.table]}:${options.address + i * step}`,
    type,
    order: args.order,
    value,
    words: result.words.slice(i * step, (i + 1) * step),
  }));
  if (args.json) {
    console.log(JSON.stringify(rows));
    return;
  }
  for (const row of rows) {
    const hex = row.words.map((w) => `0x${w.toString(16).padStart(4, '0')}`).join(' ');
    // A float32 holds about 7 significant digits: print 54.3, not its double 54.29999923706055.
    const shown =
      row.type === 'float32' && typeof row.value === 'number' ? Number(row.value.toPrecision(7)) : row.value;
    console.log(`${row.path}\t${row.type} ${row.order}\t${JSON.stringify(shown)}\t(${hex})`);
  }
}

/** `attache modbus read …`: reads and decodes a register range, to check a register map on site. */
// Typed like the other groups (bin.ts spreads them into one array); yargs hands the handler ReadArgs.
export const modbusCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'modbus read',
    describe: 'read and decode Modbus registers from a device (to check a register map)',
    builder: (y) =>
      y
        .option('bus', {
          type: 'string',
          demandOption: true,
          description: 'tcp://host[:port] or a serial device',
        })
        .option('baud', { type: 'number', default: 9600, description: 'RTU: bits per second' })
        .option('parity', { choices: ['none', 'even', 'odd'], default: 'even', description: 'RTU: parity' })
        .option('stop-bits', { type: 'number', choices: [1, 2], default: 1, description: 'RTU: stop bits' })
        .option('unit', { type: 'number', default: 1, description: 'unit (slave) id' })
        .option('table', { choices: Object.keys(tables), description: 'with --address' })
        .option('address', { type: 'number', description: '0-based address (what goes on the wire)' })
        .option('ref', { type: 'string', description: "the documentation's 1-based reference, e.g. 40001" })
        .option('count', { type: 'number', default: 1, description: 'how many values of --type' })
        .option('type', { choices: types, description: 'default uint16 (bool for coils and inputs)' })
        .option('order', {
          choices: ['ABCD', 'CDAB', 'BADC', 'DCBA'],
          default: 'ABCD',
          description: 'byte order',
        })
        .option('length', { type: 'number', description: 'for --type string: registers per string' })
        .option('timeout', { type: 'number', default: 1000, description: 'ms to wait for the answer' })
        .option('json', jsonOption) as never,
    handler: (a) => read(a as unknown as ReadArgs).catch(fail),
  },
];
