// What every command module shares and nothing more: `attache modbus read` imports this, not
// common.ts, whose config loading and gateway client (with the uplink's and the normalizer's config
// checks) it never uses; a bundle would load them with it (bench/README.md, "Command start").
import { GatewayError } from '@attache/core';

/** Options every command that reads the config takes. */
export interface CommonArgs {
  config: string;
  json?: boolean;
}

/** `--json`, for commands whose output scripts read. */
export const jsonOption = { type: 'boolean', description: 'print JSON for scripts', default: false } as const;

/** Prints `attache: CODE: message` and exits 1. */
export function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof GatewayError ? `${err.code}: ` : '';
  console.error(`attache: ${code}${message}`);
  process.exit(1);
}
