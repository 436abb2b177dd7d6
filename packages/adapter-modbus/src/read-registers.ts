import type { ModbusBus } from '@attache/core';
import { type DecodedValue, decodeRegisters } from './decode.js';
import { ModbusClient } from './modbus-client.js';
import { maxPerRead } from './plan.js';
import {
  type ByteOrder,
  isBitTable,
  type ModbusTable,
  type RegisterType,
  registerCount,
} from './register-map.js';

/** Options of {@link readRegisters}. */
export interface ReadRegistersOptions {
  /** The bus, with every field set (as `validateConfig` would leave it). */
  bus: ModbusBus;
  unitId: number;
  table: ModbusTable;
  /** 0-based address of the first value. */
  address: number;
  /** How many values of `type` to read, one after the other. */
  count: number;
  /** Default `uint16` for registers, `bool` for coils and discrete inputs. */
  type?: RegisterType;
  /** Default ABCD. */
  order?: ByteOrder;
  /** For strings: registers per string. Default 1. */
  length?: number;
  /** Default 1000 ms. */
  timeoutMs?: number;
}

/** What {@link readRegisters} read. */
export interface ReadRegistersResult {
  /** `count` decoded values. */
  values: DecodedValue[];
  /** The registers as read (16-bit words), or the bits as 0/1 for coils and discrete inputs. */
  words: number[];
}

function checked(options: ReadRegistersOptions): { type: RegisterType; span: number } {
  const type = options.type ?? (isBitTable(options.table) ? 'bool' : 'uint16');
  if (isBitTable(options.table) !== (type === 'bool')) {
    throw new TypeError(`"type" ${type} cannot be read from a ${options.table}`);
  }
  if (!Number.isInteger(options.count) || options.count < 1)
    throw new TypeError('"count" must be at least 1');
  const span = registerCount(type, type === 'string' ? (options.length ?? 1) : undefined) * options.count;
  if (span > maxPerRead(options.table)) {
    throw new TypeError(
      `"count" spans ${span} registers, more than ${maxPerRead(options.table)} in one read`,
    );
  }
  if (options.address + span > 65536) throw new TypeError('the read runs past address 65535');
  return { type, span };
}

/**
 * Reads `count` consecutive values of one type in one request and decodes them (for checking a
 * register map on site). Throws a TypeError for impossible arguments; rejects like
 * ModbusClient.read (ATTACHE_TIMEOUT, ATTACHE_MALFORMED with the exception named,
 * ATTACHE_PORT_NOT_OPEN). The connection is closed before it settles.
 */
export async function readRegisters(options: ReadRegistersOptions): Promise<ReadRegistersResult> {
  const { type, span } = checked(options);
  const client = new ModbusClient({ bus: options.bus });
  client.acquire();
  try {
    const { unitId, table, address } = options;
    const response = await client.read({
      unitId,
      table,
      address,
      count: span,
      timeoutMs: options.timeoutMs ?? 1000,
    });
    if (type === 'bool') {
      const words = response.bits.map((b) => (b ? 1 : 0));
      return { values: words, words };
    }
    const words: number[] = [];
    for (let i = 0; i < span; i++) words.push(response.bytes.readUInt16BE(i * 2));
    const size = span / options.count;
    const values: DecodedValue[] = [];
    for (let i = 0; i < options.count; i++) {
      const bytes = response.bytes.subarray(i * size * 2, (i + 1) * size * 2);
      values.push(decodeRegisters(bytes, { type, order: options.order ?? 'ABCD' }));
    }
    return { values, words };
  } finally {
    await client.release();
  }
}
