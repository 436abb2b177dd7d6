// `attache config validate`, `status` and `modbus read` with plain options start their handler
// without yargs: loading yargs, registering the command, its three parses of the command line and
// its checks were ~12 % of `config validate`'s instructions (bench/README.md, "Command start"). A
// command line is taken here only when it is unambiguous: the command's words, then each option at
// most once as `--name value`, `--name=value` or its one-letter alias, booleans as `--name` alone,
// numbers as plain decimal integers, values of `choices` options among them, every required option
// given. Anything else (help, a mistake, an unknown or repeated option, a value starting with `-`,
// `--no-json`, `--json false`) goes to yargs as before, so that its help, errors and exit codes stay
// what they were. The arguments built here are the ones yargs hands the handler for the same line
// (packages/cli/test/direct.test.ts compares them).

/** An option as yargs' `.option()` takes it, the parts this module reads. */
export interface OptionSpec {
  readonly type?: 'string' | 'number' | 'boolean';
  readonly alias?: string;
  readonly default?: unknown;
  readonly choices?: readonly (string | number)[];
  readonly demandOption?: boolean;
  readonly description: string;
}

/** A command that may start without yargs: its words, its options and its handler. */
export interface DirectCommand {
  readonly words: readonly string[];
  /**
   * The positionals yargs reads from `words` (`modbus read` is the command `modbus` with a positional
   * `read`): they are not in `_` but arguments of their own.
   */
  readonly positionals?: Readonly<Record<string, string>>;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly run: (args: Record<string, unknown>) => Promise<void>;
}

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const decimal = /^(0|[1-9][0-9]{0,14})$/;

/** The value of `spec` given as `text`, or undefined when yargs might read it differently. */
function optionValue(spec: OptionSpec, text: string): unknown {
  if (text.startsWith('-') || text === '') return undefined;
  const value = spec.type === 'number' ? (decimal.test(text) ? Number(text) : undefined) : text;
  if (value === undefined) return undefined;
  if (spec.type === undefined && spec.choices === undefined) return undefined;
  if (spec.choices !== undefined && !spec.choices.includes(value as string | number)) return undefined;
  return value;
}

/**
 * The arguments yargs would hand `command`'s handler for `argv` (the words after `attache`), or
 * undefined when `argv` is not a plain use of that command.
 */
export function directArgs(
  command: DirectCommand,
  argv: readonly string[],
): Record<string, unknown> | undefined {
  if (command.words.some((word, i) => argv[i] !== word)) return undefined;
  const byFlag = new Map<string, string>();
  for (const [name, spec] of Object.entries(command.options)) {
    byFlag.set(`--${name}`, name);
    if (spec.alias !== undefined)
      byFlag.set(spec.alias.length === 1 ? `-${spec.alias}` : `--${spec.alias}`, name);
  }
  const given = new Map<string, unknown>();
  for (let i = command.words.length; i < argv.length; i++) {
    const token = argv[i] as string;
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const name = byFlag.get(eq > 0 ? token.slice(0, eq) : token);
    if (name === undefined || given.has(name)) return undefined;
    const spec = command.options[name] as OptionSpec;
    if (spec.type === 'boolean') {
      if (eq > 0) return undefined;
      given.set(name, true);
      continue;
    }
    const text = eq > 0 ? token.slice(eq + 1) : argv[++i];
    const value = text === undefined ? undefined : optionValue(spec, text);
    if (value === undefined) return undefined;
    given.set(name, value);
  }
  const positionals = Object.entries(command.positionals ?? {});
  const args: Record<string, unknown> = {
    _: command.words.slice(0, command.words.length - positionals.length),
    ...Object.fromEntries(positionals),
  };
  for (const [name, spec] of Object.entries(command.options)) {
    const value = given.has(name) ? given.get(name) : spec.default;
    if (value === undefined) {
      if (spec.demandOption) return undefined;
      continue;
    }
    args[name] = value;
    args[camel(name)] = value;
    if (spec.alias !== undefined) args[spec.alias] = value;
  }
  args.$0 = 'attache';
  return args;
}
