import type { ModbusRegister } from '@attache/core';
import { isBitTable, locate, type ModbusTable, type RegisterLocation } from './register-map.js';

/** Most registers one read may ask for (FC 03/04: 125, so the reply fits a 256-byte RTU frame). */
export const maxRegistersPerRead = 125;
/** Most coils or discrete inputs one read may ask for (FC 01/02). */
export const maxBitsPerRead = 2000;

/** A configured register, located. `index` is its position in the register map. */
export interface PlannedValue {
  index: number;
  register: ModbusRegister;
  at: RegisterLocation;
}

/** One read request: `count` registers (or bits) of `table` from `address`, and the values in it. */
export interface ReadBlock {
  table: ModbusTable;
  address: number;
  count: number;
  values: PlannedValue[];
}

const tableOrder: ModbusTable[] = ['coil', 'discrete-input', 'input-register', 'holding-register'];

/** Most registers (or bits) one read of `table` may span. */
export function maxPerRead(table: ModbusTable): number {
  return isBitTable(table) ? maxBitsPerRead : maxRegistersPerRead;
}

/**
 * Groups a register map into as few reads as the protocol allows without reading an address that is
 * not in the map: values of one table are merged only where their ranges overlap or touch, up to
 * {@link maxPerRead}. Blocks come by table (coils, discrete inputs, input, holding registers), then
 * address. Throws a TypeError for a register that cannot be located (see checkModbusConfig).
 */
export function planReads(registers: readonly ModbusRegister[]): ReadBlock[] {
  const located = registers.map((register, index) => ({ index, register, at: locate(register) }));
  const blocks: ReadBlock[] = [];
  for (const table of tableOrder) {
    const values = located
      .filter((v) => v.at.table === table)
      .sort((a, b) => a.at.address - b.at.address || b.at.count - a.at.count);
    let block: ReadBlock | undefined;
    for (const value of values) {
      const end = value.at.address + value.at.count;
      const blockEnd = block ? block.address + block.count : -1;
      if (
        block &&
        value.at.address <= blockEnd &&
        Math.max(blockEnd, end) - block.address <= maxPerRead(table)
      ) {
        block.count = Math.max(blockEnd, end) - block.address;
        block.values.push(value);
      } else {
        block = { table, address: value.at.address, count: value.at.count, values: [value] };
        blocks.push(block);
      }
    }
  }
  return blocks;
}
