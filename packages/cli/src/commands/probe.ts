import { type ProbeResult, probeConfigSnippet, probeSerialPort } from '@attache/adapter-rs232';
import type { CommandModule } from 'yargs';
import { type CommonArgs, fail, jsonOption, withConfig } from './common.js';

interface ProbeArgs extends CommonArgs {
  port: string;
  seconds: number;
  answerEnq: boolean;
}

const protocolNames = {
  astm: 'ASTM E1381 (lab analyzer)',
  'kv-line': 'KEY=VALUE lines',
  'text-line': 'plain text lines (use a regex-line format)',
  none: 'nothing',
} as const;

function report(result: ProbeResult): string {
  const best = result.best;
  if (best === null) {
    return [
      `Nothing recognized on ${result.path}: no ASTM traffic, no readable lines at any common setting.`,
      'Check the cable (null-modem?), that the device is sending, and try a longer --seconds.',
    ].join('\n');
  }
  const { baudRate, dataBits, parity, stopBits } = best.setting;
  const s = best.score;
  const framing = `${dataBits}${parity === 'none' ? 'N' : 'E'}${stopBits}`;
  return [
    `Best match on ${result.path}: ${protocolNames[s.protocol]} at ${baudRate} baud ${framing}`,
    `  evidence: ${s.bytes} bytes, ${s.enq} ENQ, ${s.validFrames} valid frames, ${s.kvLines}/${s.lines} KEY=VALUE lines, ${s.noise} noise bytes`,
    'Config snippet (a "devices" entry; complete the codes and fields):',
    JSON.stringify(probeConfigSnippet(result), null, 2),
  ].join('\n');
}

async function probe(args: ProbeArgs): Promise<void> {
  const result = await probeSerialPort({ path: args.port, seconds: args.seconds, answerEnq: args.answerEnq });
  if (args.json) {
    console.log(JSON.stringify({ ...result, snippet: probeConfigSnippet(result) }, null, 2));
  } else console.log(report(result));
  process.exitCode = result.best === null ? 2 : 0;
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
        .option('json', jsonOption),
    handler: (a) => probe(a as unknown as ProbeArgs).catch(fail),
  },
];
