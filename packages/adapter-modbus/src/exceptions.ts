/** Modbus exception codes by name (Modbus Application Protocol v1.1b3 §7). */
const names: Record<number, string> = {
  1: 'ILLEGAL FUNCTION',
  2: 'ILLEGAL DATA ADDRESS',
  3: 'ILLEGAL DATA VALUE',
  4: 'SERVER DEVICE FAILURE',
  5: 'ACKNOWLEDGE',
  6: 'SERVER DEVICE BUSY',
  8: 'MEMORY PARITY ERROR',
  10: 'GATEWAY PATH UNAVAILABLE',
  11: 'GATEWAY TARGET DEVICE FAILED TO RESPOND',
};

/** The name of a Modbus exception code, e.g. 2 → `ILLEGAL DATA ADDRESS`; `UNKNOWN` for others. */
export function modbusExceptionName(code: number): string {
  return names[code] ?? 'UNKNOWN';
}

/** The exception code a modbus-serial error carries (`modbusCode`), if it is an exception response. */
export function modbusCodeOf(err: unknown): number | undefined {
  const code = (err as { modbusCode?: unknown } | null)?.modbusCode;
  return typeof code === 'number' ? code : undefined;
}
