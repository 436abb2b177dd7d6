import type { ModbusRegister } from '@attache/core';

/** A Modbus table, by the name the config uses. */
export type ModbusTable = NonNullable<ModbusRegister['table']>;

/** A register's type, as in the config. */
export type RegisterType = ModbusRegister['type'];

/** Byte order of a multi-byte value, as in the config. */
export type ByteOrder = ModbusRegister['order'];

/** Where a value sits: table, 0-based address and how many registers (or coils) it spans. */
export interface RegisterLocation {
  table: ModbusTable;
  address: number;
  count: number;
}

/** The short table names of observation paths (`hr:100`). */
export const tablePrefix: Record<ModbusTable, string> = {
  coil: 'co',
  'discrete-input': 'di',
  'input-register': 'ir',
  'holding-register': 'hr',
};

const refTables: Record<string, ModbusTable> = {
  '0': 'coil',
  '1': 'discrete-input',
  '3': 'input-register',
  '4': 'holding-register',
};

/** True for the 1-bit tables (coils and discrete inputs). */
export function isBitTable(table: ModbusTable): boolean {
  return table === 'coil' || table === 'discrete-input';
}

/**
 * How many registers (or bits, for `bool`) a value of `type` spans; `length` for strings.
 * Throws a TypeError for a string without a positive `length`.
 */
export function registerCount(type: RegisterType, length?: number): number {
  switch (type) {
    case 'bool':
    case 'bit':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      if (length === undefined || length < 1) throw new TypeError('"length" must be at least 1 for a string');
      return length;
  }
}

/**
 * The table and 0-based address of a 1-based documentation reference: the first digit is the table
 * (`0` coil, `1` discrete input, `3` input register, `4` holding register), the other 4 or 5 digits the
 * 1-based number. `40001` → holding register 0; `300010` → input register 9. Returns undefined for a
 * malformed reference or one numbered 0.
 */
export function resolveRef(ref: string): { table: ModbusTable; address: number } | undefined {
  if (!/^[0134]([0-9]{4}|[0-9]{5})$/.test(ref)) return undefined;
  const table = refTables[ref.charAt(0)];
  const number = Number(ref.slice(1));
  if (table === undefined || number < 1) return undefined;
  return { table, address: number - 1 };
}

/**
 * Where a configured register is: from `ref`, or from `table` + `address`. Throws a TypeError when
 * neither is usable (checkModbusConfig refuses such a map first).
 */
export function locate(register: ModbusRegister): RegisterLocation {
  const count = registerCount(register.type, register.length);
  if (register.ref !== undefined) {
    const at = resolveRef(register.ref);
    if (at === undefined)
      throw new TypeError(`register ${register.name}: "ref" ${register.ref} is not valid`);
    return { ...at, count };
  }
  if (register.table === undefined || register.address === undefined) {
    throw new TypeError(`register ${register.name}: needs "ref", or "table" and "address"`);
  }
  return { table: register.table, address: register.address, count };
}

/** The observation path of a register: `hr:100`, `co:3`, `hr:5#3` for bit 3 of holding register 5. */
export function registerPath(register: ModbusRegister, at: RegisterLocation): string {
  const base = `${tablePrefix[at.table]}:${at.address}`;
  return register.type === 'bit' ? `${base}#${register.bit ?? 0}` : base;
}
