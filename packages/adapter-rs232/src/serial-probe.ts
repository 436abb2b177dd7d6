import { SerialPort } from 'serialport';
import type { SerialPortClass } from './session.js';
import { type ProbeProtocol, scoreTraffic, type TrafficScore } from './traffic-score.js';

/** One port setting a probe listens at. */
export interface ProbeSetting {
  baudRate: number;
  dataBits: 7 | 8;
  parity: 'none' | 'even';
  stopBits: 1;
}

/** The common settings, most likely first: 9600 … 57600 baud, each 8N1 then 7E1. */
export const PROBE_SETTINGS: readonly ProbeSetting[] = [
  9600, 19200, 38400, 115200, 4800, 2400, 57600,
].flatMap((baudRate) => [
  { baudRate, dataBits: 8, parity: 'none', stopBits: 1 } as const,
  { baudRate, dataBits: 7, parity: 'even', stopBits: 1 } as const,
]);

/** Options of {@link probeSerialPort}. */
export interface ProbeOptions {
  path: string;
  /** Total listening time, s, shared by the settings. Default 42 (3 s per setting). */
  seconds?: number;
  /** ACK each ENQ (never a frame), so that an ASTM instrument sends its first frame. Default false. */
  answerEnq?: boolean;
  /** Default `PROBE_SETTINGS`. */
  settings?: readonly ProbeSetting[];
  /** Default serialport's `SerialPort`. */
  portClass?: SerialPortClass;
}

/** How one setting did. */
export interface ProbeTrial {
  setting: ProbeSetting;
  score: TrafficScore;
  /** Set when the port could not be opened at this setting. */
  error?: string;
}

/** What a probe found: the best trial (null when nothing was recognized) and every trial. */
export interface ProbeResult {
  path: string;
  best: ProbeTrial | null;
  trials: ProbeTrial[];
}

function open(port: InstanceType<SerialPortClass>): Promise<void> {
  return new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
}

async function listen(options: ProbeOptions, setting: ProbeSetting, ms: number): Promise<ProbeTrial> {
  const PortClass = options.portClass ?? SerialPort;
  const port = new PortClass({ path: options.path, ...setting, autoOpen: false });
  try {
    await open(port);
  } catch (err) {
    return { setting, score: scoreTraffic(Buffer.alloc(0)), error: (err as Error).message };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  port.on('data', (chunk: Buffer) => {
    // 64 KiB per setting is plenty to recognize a protocol; more is dropped.
    if (size < 65_536) chunks.push(chunk);
    size += chunk.length;
    if (options.answerEnq && chunk.includes(0x05)) port.write(Buffer.from([0x06]));
  });
  port.on('error', () => undefined);
  await new Promise((resolve) => setTimeout(resolve, ms));
  await new Promise<void>((resolve) => port.close(() => resolve()));
  return { setting, score: scoreTraffic(Buffer.concat(chunks)) };
}

/**
 * Listens on `path` at each setting in turn for `seconds / settings.length` and scores the traffic
 * (see scoreTraffic). Transmits nothing unless `answerEnq`. Resolves within about `seconds` (plus
 * the time to open and close the port each time); `best` is the highest score (the earlier setting
 * on a tie), or null when no setting gave recognizable traffic.
 * @throws TypeError when `seconds` is not positive or `settings` is empty.
 */
export async function probeSerialPort(options: ProbeOptions): Promise<ProbeResult> {
  const settings = options.settings ?? PROBE_SETTINGS;
  const seconds = options.seconds ?? 42;
  if (!(seconds > 0)) throw new TypeError('"seconds" must be greater than 0');
  if (settings.length === 0) throw new TypeError('"settings" must not be empty');
  const ms = (seconds * 1000) / settings.length;
  const trials: ProbeTrial[] = [];
  for (const setting of settings) trials.push(await listen(options, setting, ms));
  let best: ProbeTrial | null = null;
  for (const trial of trials) if (trial.score.score > (best?.score.score ?? 0)) best = trial;
  return { path: options.path, best, trials };
}

/** The `format` a technician starts from for a detected protocol (to be completed: codes, fields). */
function formatFor(protocol: ProbeProtocol): Record<string, unknown> {
  if (protocol === 'astm') return { kind: 'astm' };
  if (protocol === 'kv-line') {
    return { kind: 'kv-line', fields: { KEY: { code: 'CODE', unit: 'UNIT' } } };
  }
  return { kind: 'regex-line', pattern: '^(?<value>.+)$', fields: { value: { code: 'CODE', unit: 'UNIT' } } };
}

/** A device block for the config file from a probe's best trial (null when nothing was found). */
export function probeConfigSnippet(
  result: ProbeResult,
  deviceId = 'device-1',
): Record<string, unknown> | null {
  const best = result.best;
  if (best === null) return null;
  const { baudRate, dataBits, parity, stopBits } = best.setting;
  return {
    id: deviceId,
    adapter: 'rs232',
    port: { path: result.path, baudRate, dataBits, parity, stopBits },
    format: formatFor(best.score.protocol),
  };
}
