// `attache config validate`, `status` and `modbus read` skip yargs for a plain command line
// (src/commands/direct.ts): for such a line the handler must get exactly what yargs hands it, and
// any other line must go to yargs (help, errors and exit codes as before).

import { fuzzParameters } from '@attache/devkit';
import fc from 'fast-check';
import t from 'tap';
import { parser } from '../dist/cli.js';
import { configDirect } from '../dist/commands/config.js';
import { type DirectCommand, directArgs } from '../dist/commands/direct.js';
import { gatewayDirect } from '../dist/commands/gateway.js';
import { modbusDirect } from '../dist/commands/modbus.js';
import { statusDirect } from '../dist/commands/status.js';

const commands: DirectCommand[] = [...configDirect, ...statusDirect, ...modbusDirect, ...gatewayDirect];

/**
 * What the handler would get from yargs for `argv`, or undefined when yargs refuses the line: a
 * middleware takes the arguments yargs would hand the handler and never settles, so that the
 * handler never runs.
 */
async function fromYargs(argv: string[]): Promise<Record<string, unknown> | undefined> {
  let seen: (args: Record<string, unknown>) => void = () => undefined;
  const taken = new Promise<Record<string, unknown>>((resolve) => {
    seen = resolve;
  });
  const y = (await parser(argv))
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new Error(message);
    })
    .middleware((args) => {
      seen({ ...args });
      return new Promise<never>(() => undefined);
    });
  return Promise.race([
    taken,
    y.parseAsync().then(
      () => undefined,
      () => undefined,
    ),
  ]);
}

const direct = (argv: string[]) =>
  commands.map((c) => directArgs(c, argv)).find((args) => args !== undefined);

t.test('a plain command line: the handler gets what yargs would give it', async (t) => {
  for (const line of [
    'config validate --config /etc/x.json',
    'config validate -c /etc/x.json --offline',
    'config validate --config=/etc/x.json',
    'config validate',
    'status --json --config a.json',
    'status',
    'run --config /etc/attache/config.json',
    'run',
    'modbus read --bus tcp://h:502 --ref 40001',
    'modbus read --bus /dev/ttyUSB0 --baud 19200 --parity none --stop-bits 2 --unit 3 --table holding --address 10 --count 4 --type float32 --order CDAB --timeout 500 --json',
    'modbus read --bus=tcp://x --type string --length 5 --ref 40001 --address 0',
  ]) {
    const argv = line.split(' ');
    const args = direct(argv);
    t.ok(args, `${line}: taken without yargs`);
    t.same(args, await fromYargs(argv), `${line}: the same arguments as from yargs`);
  }
});

t.test('anything else goes to yargs', async (t) => {
  for (const line of [
    'config validate --config',
    'config validate --help',
    'config validate --config a --config b',
    'config validate --verbose',
    'config validate extra',
    'config validate --config -x',
    'config validate --offline=false',
    'config',
    'config --help',
    'status --no-json',
    'status -c=a.json',
    'status --json false',
    'status --version',
    'statu',
    'run --json',
    'run --config a extra',
    'sync',
    'modbus read --ref 40001',
    'modbus read --bus x --count 1.5',
    'modbus read --bus x --count -1',
    'modbus read --bus x --count 0x10',
    'modbus read --bus x --count 010',
    'modbus read --bus x --stop-bits 3',
    'modbus read --bus x --stopBits 2',
    'modbus read --bus x --parity mark',
    'modbus read --bus x --type 16',
    'modbus read --bus=',
    'modbus write --bus x',
    'modbus',
  ])
    t.equal(direct(line.split(' ')), undefined, line);
});

t.test('options yargs would read some other way are left to it', async (t) => {
  const command: DirectCommand = {
    words: ['probe'],
    options: {
      'long-alias': { type: 'string', alias: 'la', description: 'a long alias' },
      untyped: { description: 'neither a type nor choices: yargs guesses' },
    },
    run: async () => undefined,
  };
  t.same(directArgs(command, ['probe', '--la', 'x']), {
    _: ['probe'],
    'long-alias': 'x',
    longAlias: 'x',
    la: 'x',
    $0: 'attache',
  });
  t.equal(directArgs(command, ['probe', '--untyped', '12']), undefined, 'an untyped value');
  t.equal(directArgs(command, ['probe', '--la', '']), undefined, 'an empty value');
});

/** Values in the forms a hand-typed command line holds: valid ones, and numbers and words in odd forms. */
const oddValues = [
  '0x10',
  '1e3',
  '-1',
  ' 5',
  '5 ',
  '',
  '=x',
  'a=b',
  'true',
  'false',
  '1.5',
  '010',
  '00',
  '0',
  '65535',
  '9999999999999999',
  '--',
  '-h',
  '--help',
  'read',
  'status',
  'tcp://h:502',
  '/etc/x.json',
  'a b',
  'é',
];

/** Each command's option flags as typed: `--name`, the alias, the camel-case name and `--no-name`. */
function flagsOf(command: DirectCommand): string[] {
  return Object.entries(command.options).flatMap(([name, spec]) => [
    `--${name}`,
    `--${name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())}`,
    `--no-${name}`,
    ...(spec.alias === undefined ? [] : [spec.alias.length === 1 ? `-${spec.alias}` : `--${spec.alias}`]),
  ]);
}

/** Values the option's own spec allows (its choices, its default), as typed. */
function valuesOf(command: DirectCommand): string[] {
  return Object.values(command.options).flatMap((spec) =>
    [...(spec.choices ?? []), ...(spec.default === undefined ? [] : [spec.default])].map(String),
  );
}

t.test(
  'any command line built from the words, options and values: taken only with what yargs gives',
  async (t) => {
    const token = (c: DirectCommand) =>
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...flagsOf(c)) },
        { weight: 4, arbitrary: fc.constantFrom(...oddValues, ...valuesOf(c)) },
        {
          weight: 3,
          arbitrary: fc
            .tuple(fc.constantFrom(...flagsOf(c)), fc.constantFrom(...oddValues, ...valuesOf(c)))
            .map(([flag, value]) => `${flag}=${value}`),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom('--', '-h', '--help', '--version', '--verbose', '-x', 'extra', '-'),
        },
      );
    // One option used as a person would: `--name value`, `--name=value` or the alias, with a value of
    // its own kind (one of its choices, a decimal, a path) or, less often, an odd one.
    const plainUse = (c: DirectCommand) =>
      fc
        .tuple(
          fc.constantFrom(...Object.entries(c.options)),
          fc.constantFrom('flag', 'alias', 'equals'),
          fc.oneof(
            { weight: 3, arbitrary: fc.constantFrom('12', '0', '1', '2', 'tcp://h:502', '/etc/x.json') },
            { weight: 1, arbitrary: fc.constantFrom(...oddValues) },
          ),
          fc.nat(),
        )
        .map(([[name, spec], form, value, pick]) => {
          const flag = form === 'alias' && spec.alias !== undefined ? `-${spec.alias}` : `--${name}`;
          if (spec.type === 'boolean') return [flag];
          const own = spec.choices === undefined ? value : String(spec.choices[pick % spec.choices.length]);
          const text = pick % 5 === 0 ? value : own;
          return form === 'equals' ? [`${flag}=${text}`] : [flag, text];
        });
    const line = fc.constantFrom(...commands).chain((c) =>
      fc.tuple(
        fc.oneof(
          { weight: 8, arbitrary: fc.constant([...c.words]) },
          { weight: 1, arbitrary: fc.constant(c.words.slice(0, -1)) },
          { weight: 1, arbitrary: fc.constant([...c.words, c.words.at(-1) as string]) },
        ),
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: plainUse(c) },
            token(c).map((x) => [x]),
          ),
          { maxLength: 6 },
        ),
      ),
    );
    let taken = 0;
    await fc.assert(
      fc.asyncProperty(line, async ([words, uses]) => {
        const argv = [...words, ...uses.flat()];
        const args = direct(argv);
        if (args === undefined) return;
        taken++;
        const expected = await fromYargs(argv);
        if (JSON.stringify(sorted(args)) !== JSON.stringify(sorted(expected)))
          throw new Error(
            `${JSON.stringify(argv)}: ${JSON.stringify(args)} ≠ yargs ${JSON.stringify(expected)}`,
          );
      }),
      fuzzParameters(300),
    );
    t.ok(taken > 0, `${taken} lines taken without yargs, each with what yargs gives`);
  },
);

/** `args` with its keys sorted (undefined stays undefined), to compare with JSON. */
function sorted(args: Record<string, unknown> | undefined): unknown {
  return args === undefined
    ? undefined
    : Object.fromEntries(Object.entries(args).sort(([a], [b]) => a.localeCompare(b)));
}
