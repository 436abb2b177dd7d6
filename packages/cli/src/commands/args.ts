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

/** C0 controls but tab and newline, DEL and C1 controls: what a terminal may take for a command. */
function terminalControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f);
}

/**
 * `text` with every terminal control character (ESC, BEL, CSI, …; tab and newline kept) shown as
 * U+FFFD: for text the service's side chose (a control answer, an error message) on root's terminal,
 * where an escape sequence could retitle it, hide lines, or answer back into the shell.
 */
export function printable(text: string): string {
  let shown = '';
  for (const char of text) shown += terminalControl(char.charCodeAt(0)) ? '\uFFFD' : char;
  return shown;
}

/** Prints `attache: CODE: message` (terminal controls shown as U+FFFD) and exits 1. */
export function fail(err: unknown): never {
  const message = printable(err instanceof Error ? err.message : String(err));
  const code = err instanceof GatewayError ? `${err.code}: ` : '';
  console.error(`attache: ${code}${message}`);
  process.exit(1);
}
