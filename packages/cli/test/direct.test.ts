// `attache config validate`, `status` and `modbus read` skip yargs for a plain command line
// (src/commands/direct.ts): for such a line the handler must get exactly what yargs hands it, and
// any other line must go to yargs (help, errors and exit codes as before).

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
