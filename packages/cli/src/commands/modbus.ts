import type { ModbusTable, ReadRegistersOptions, resolveRef } from '@attache/adapter-modbus';
import type { ModbusBus } from '@attache/core';
import type { CommandModule } from 'yargs';
import { type CommonArgs, fail, jsonOption } from './args.js';
import type { DirectCommand, OptionSpec } from './direct.js';

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

/** A TCP address written without its scheme: `10.0.0.5:502`, `plc.local:502`. */
const bareHostPort = /^[A-Za-z0-9.-]+:\d+$/;

function busProblem(bus: string): string | undefined {
  if (bus.startsWith('tcp://')) {
    let url: URL;
    try {
      url = new URL(bus);
    } catch {
      return `--bus ${bus} is not a valid address: write tcp://host[:port]`;
    }
    if (url.hostname === '') return `--bus ${bus} names no host: write tcp://host[:port]`;
    if (url.pathname !== '' && url.pathname !== '/') return `--bus ${bus}: only tcp://host[:port], no path`;
    return undefined;
  }
  if (bareHostPort.test(bus)) return `--bus ${bus} looks like a TCP address: write tcp://${bus}`;
  if (!bus.startsWith('/')) {
    return `--bus ${bus} is neither tcp://host[:port] nor a serial device path (e.g. /dev/ttyUSB0; attache ports lists them)`;
  }
  return undefined;
}

/** Every problem of the arguments, before anything is opened (empty when they are usable). */
export function readArgsProblems(args: ReadArgs): string[] {
  const problems: string[] = [];
  const bus = busProblem(args.bus);
  if (bus !== undefined) problems.push(bus);
  if (!Number.isInteger(args.unit) || args.unit < 1 || args.unit > 247) {
    problems.push(
      `--unit ${args.unit} must be a whole number from 1 to 247 (0 is broadcast: no device answers a read)`,
    );
  }
  if (args.ref !== undefined && (args.table !== undefined || args.address !== undefined)) {
    problems.push('give either --ref or --table with --address, not both');
  } else if (args.ref === undefined && (args.table === undefined) !== (args.address === undefined)) {
    problems.push(args.table === undefined ? '--address needs --table' : '--table needs --address');
  }
  if (
    args.address !== undefined &&
    (!Number.isInteger(args.address) || args.address < 0 || args.address > 65535)
  ) {
    problems.push(`--address ${args.address} must be a whole number from 0 to 65535`);
  }
  if (!Number.isInteger(args.count) || args.count < 1)
    problems.push(`--count ${args.count} must be a whole number ≥ 1`);
  if (args.type === 'string' && args.length === undefined) {
    problems.push('--type string needs --length: how many registers (2 characters each) one string takes');
  }
  if (args.length !== undefined && (!Number.isInteger(args.length) || args.length < 1 || args.length > 125)) {
    problems.push(`--length ${args.length} must be a whole number from 1 to 125`);
  }
  if (!(args.timeout > 0)) problems.push(`--timeout ${args.timeout} must be more than 0 ms`);
  return problems;
}

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
  const problems = readArgsProblems(args);
  if (problems.length > 0) throw new TypeError(problems.join('\nattache: '));
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

/** `attache modbus read`'s options, in the order its help lists them. */
const readOptions = {
  bus: { type: 'string', demandOption: true, description: 'tcp://host[:port] or a serial device' },
  baud: { type: 'number', default: 9600, description: 'RTU: bits per second' },
  parity: { choices: ['none', 'even', 'odd'], default: 'even', description: 'RTU: parity' },
  'stop-bits': { type: 'number', choices: [1, 2], default: 1, description: 'RTU: stop bits' },
  unit: { type: 'number', default: 1, description: 'unit (slave) id' },
  table: { choices: Object.keys(tables), description: 'with --address' },
  address: { type: 'number', description: '0-based address (what goes on the wire)' },
  ref: { type: 'string', description: "the documentation's 1-based reference, e.g. 40001" },
  count: { type: 'number', default: 1, description: 'how many values of --type' },
  type: { choices: types, description: 'default uint16 (bool for coils and inputs)' },
  order: { choices: ['ABCD', 'CDAB', 'BADC', 'DCBA'], default: 'ABCD', description: 'byte order' },
  length: { type: 'number', description: 'for --type string: registers per string' },
  timeout: { type: 'number', default: 1000, description: 'ms to wait for the answer' },
  json: jsonOption,
} as const satisfies Record<string, OptionSpec>;

/** `attache modbus read …`: reads and decodes a register range, to check a register map on site. */
// Typed like the other groups (bin.ts spreads them into one array); yargs hands the handler ReadArgs.
export const modbusCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'modbus read',
    describe: 'read and decode Modbus registers from a device (to check a register map)',
    builder: (y) =>
      Object.entries(readOptions).reduce((options, [name, spec]) => options.option(name, spec), y) as never,
    handler: (a) => read(a as unknown as ReadArgs).catch(fail),
  },
];

/** `attache modbus read` without yargs, for a plain command line (direct.ts). */
export const modbusDirect: DirectCommand[] = [
  {
    words: ['modbus', 'read'],
    positionals: { read: 'read' },
    options: readOptions,
    run: (a) => read(a as unknown as ReadArgs).catch(fail),
  },
];
