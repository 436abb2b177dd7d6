import {
  heardKeys,
  type ProbeProblem,
  type ProbeResult,
  type ProbeTrial,
  portHolders,
  probeConfigSnippet,
  probeSerialPort,
} from '@attache/adapter-rs232';
import type { CommandModule } from 'yargs';
import { type CommonArgs, fail, jsonOption, withConfig } from './common.js';
import { askPolledDevices } from './probe-ask.js';

interface ProbeArgs extends CommonArgs {
  port: string;
  seconds: number;
  answerEnq: boolean;
  ask: boolean;
}

export const protocolNames = {
  astm: 'ASTM E1381 (lab analyzer)',
  'kv-line': 'KEY=VALUE lines',
  'text-line': 'plain text lines (use a regex-line format)',
  none: 'nothing',
} as const;

function framing(trial: ProbeTrial): string {
  const { baudRate, dataBits, parity, stopBits } = trial.setting;
  return `${baudRate} baud ${dataBits}${parity === 'none' ? 'N' : 'E'}${stopBits}`;
}

/** One line per setting, printed while the probe goes on: what arrived, and the first line heard. */
function trialLine(trial: ProbeTrial): string {
  if (trial.error) return `  ${framing(trial)}: cannot open (${trial.error})`;
  const s = trial.score;
  const seen =
    s.bytes === 0
      ? 'nothing'
      : `${s.bytes} bytes, ${s.lines} lines (${s.kvLines} KEY=VALUE), ${s.noise} noise bytes`;
  const heard = trial.heard[0] === undefined ? '' : `\n      heard: ${JSON.stringify(trial.heard[0])}`;
  return `  ${framing(trial)}: ${seen}${s.enq > 0 ? `, ${s.enq} ENQ` : ''}${heard}`;
}

async function holdersText(path: string): Promise<string> {
  const others = (await portHolders(path)).filter((h) => h.pid !== process.pid);
  return others.map((h) => `pid ${h.pid} (${h.command})`).join(', ');
}

/** What to do about a port the probe could not listen to. */
export async function problemText(path: string, problem: ProbeProblem): Promise<string> {
  switch (problem.kind) {
    case 'missing':
      return `${path} does not exist: is the adapter plugged in, and is this its name? \`attache ports\` lists the serial ports and their stable names.`;
    case 'busy': {
      const holders = await holdersText(path);
      return `${path} is in use by another process${holders ? `: ${holders}` : ''}. Stop it first (the gateway: systemctl stop attache), then probe again.`;
    }
    case 'denied':
      return `not allowed to open ${path} (${problem.message}): run as root, or as a member of the group that owns it (dialout).`;
    case 'not-a-device':
      return `${path} is not a serial port (not a character device): \`attache ports\` lists the serial ports.`;
    default:
      return `cannot open ${path}: ${problem.message}`;
  }
}

async function nothingText(result: ProbeResult): Promise<string> {
  const bytes = result.trials.reduce((n, t) => n + t.score.bytes, 0);
  const holders = await holdersText(result.path);
  const lines = [`Nothing recognized on ${result.path}.`];
  if (holders) lines.push(`Another process has the port open and may be reading the data: ${holders}.`);
  if (bytes === 0) {
    lines.push(
      'No byte arrived at any setting: check the cable (a null-modem adapter?), that the device is on and set to send, and try a longer --seconds.',
    );
  } else {
    lines.push(
      `${bytes} bytes arrived, never clean at a common setting: the device may use a rarer speed or framing (7 data bits with odd parity, 2 stop bits), or send binary data.`,
    );
  }
  return lines.join('\n');
}

function bestText(result: ProbeResult, best: ProbeTrial): string {
  const s = best.score;
  const lines = [
    `Best match on ${result.path}: ${protocolNames[s.protocol]} at ${framing(best)}`,
    `  evidence: ${s.bytes} bytes, ${s.enq} ENQ, ${s.validFrames} valid frames, ${s.kvLines}/${s.lines} KEY=VALUE lines, ${s.noise} noise bytes`,
  ];
  if (s.protocol === 'kv-line') {
    const keys = heardKeys(best.heard);
    lines.push(`  keys heard: ${[...keys.numbers, ...keys.statusWords].join(' ') || 'none'}`);
    if (keys.other.length > 0)
      lines.push(`  left out (not numbers, or identifiers): ${keys.other.join(' ')}`);
  }
  lines.push(
    'Config snippet (a "devices" entry, from what was heard; give LOCAL fields their code and UCUM unit):',
    JSON.stringify(probeConfigSnippet(result), null, 2),
  );
  return lines.join('\n');
}

async function probe(args: ProbeArgs): Promise<void> {
  const asked = args.ask ? await askPolledDevices(args.port) : undefined;
  if (asked !== undefined) {
    const { baudRate, parity } = asked.setting;
    if (args.json) console.log(JSON.stringify({ path: args.port, asked, snippet: asked.snippet }, null, 2));
    else
      console.log(
        `${asked.protocol} answered on ${args.port} at ${baudRate} baud 8${parity === 'even' ? 'E' : 'N'}1\nConfig snippet (a "devices" entry):\n${JSON.stringify(asked.snippet, null, 2)}`,
      );
    return;
  }
  if (!args.json)
    console.error(
      `listening on ${args.port} (${args.seconds} s in all; nothing is sent${args.answerEnq ? ' but ACK to ENQ' : ''}):`,
    );
  const result = await probeSerialPort({
    path: args.port,
    seconds: args.seconds,
    answerEnq: args.answerEnq,
    // What is heard, while listening; on stderr, so that --json keeps stdout to JSON.
    onTrial: (trial) => console.error(trialLine(trial)),
  });
  if (args.json) {
    const problem = result.problem
      ? { ...result.problem, advice: await problemText(args.port, result.problem) }
      : undefined;
    console.log(
      JSON.stringify(
        { ...result, ...(problem ? { problem } : {}), snippet: probeConfigSnippet(result) },
        null,
        2,
      ),
    );
  } else if (result.problem) console.error(`attache: ${await problemText(args.port, result.problem)}`);
  else if (result.best === null) console.log(await nothingText(result));
  else console.log(bestText(result, result.best));
  process.exitCode = result.problem ? 1 : result.best === null ? 2 : 0;
}

/** `attache probe PORT [--seconds N] [--answer-enq] [--json]`. */
export const probeCommands: CommandModule<object, CommonArgs>[] = [
  {
    command: 'probe <port>',
    describe: 'listen on a serial port and detect baud rate, framing and protocol',
    builder: (y) =>
      withConfig(y)
        .positional('port', { type: 'string', demandOption: true, description: 'serial device path' })
        .option('seconds', { type: 'number', default: 42, description: 'total listening time' })
        .option('answer-enq', {
          type: 'boolean',
          default: false,
          description: 'ACK an ASTM ENQ (never a frame) to see a frame',
        })
        .option('ask', {
          type: 'boolean',
          default: false,
          description:
            'first send the opening request of devices that must be asked (MEDIBUS ICC, IntelliVue association)',
        })
        .option('json', jsonOption),
    handler: (a) => probe(a as unknown as ProbeArgs).catch(fail),
  },
];
