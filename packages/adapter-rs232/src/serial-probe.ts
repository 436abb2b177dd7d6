import { stat } from 'node:fs/promises';
import { SerialPort } from 'serialport/dist/serialport.js';
import type { SerialPortClass } from './serial-link.js';
import { scoreTraffic, type TrafficScore } from './traffic-score.js';

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

/** Why a probe could not listen at all: the port is missing, held by another process, or not allowed. */
export interface ProbeProblem {
  kind: 'missing' | 'busy' | 'denied' | 'not-a-device' | 'error';
  /** The system's own words (errno message). */
  message: string;
}

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
  /** Called after each setting with what was heard there (to show progress while listening). */
  onTrial?: (trial: ProbeTrial) => void;
}

/** How one setting did. */
export interface ProbeTrial {
  setting: ProbeSetting;
  score: TrafficScore;
  /** The first complete printable lines heard (at most 20, each cut at 200 characters). */
  heard: string[];
  /** Set when the port could not be opened at this setting. */
  error?: string;
}

/** What a probe found: the best trial (null when nothing was recognized) and every trial. */
export interface ProbeResult {
  path: string;
  best: ProbeTrial | null;
  trials: ProbeTrial[];
  /** Set when the port could not be listened to at all (then there are no trials). */
  problem?: ProbeProblem;
}

const maxHeard = 20;
const maxHeardChars = 200;

/** A line without the STX and frame number an ASTM record arrives with inside its frame. */
function withoutFrameStart(line: string): string {
  return line.charCodeAt(0) === 0x02 ? line.slice(1).replace(/^[0-7]/, '') : line;
}

/** Only tab and printable ASCII: a line with anything else was heard at a wrong speed or framing. */
function isText(line: string): boolean {
  return [...line].every((ch) => ch === '\t' || (ch >= ' ' && ch <= '~'));
}

/** The complete lines in `bytes` that are text (the first may be cut: skipped). */
function heardLines(bytes: Buffer): string[] {
  return bytes
    .toString('latin1')
    .split(/[\r\n]+/)
    .slice(1, -1)
    .map(withoutFrameStart)
    .filter((line) => line.trim().length >= 3 && isText(line))
    .slice(0, maxHeard)
    .map((line) => line.slice(0, maxHeardChars));
}

function open(port: InstanceType<SerialPortClass>): Promise<void> {
  return new Promise((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
}

/** What an error opening the port means for the technician. */
function problemOf(err: Error & { code?: string }): ProbeProblem {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/ENOENT|No such file/i.test(text)) return { kind: 'missing', message: err.message };
  if (/Cannot lock port|EBUSY|EAGAIN|Resource temporarily unavailable|Device or resource busy/i.test(text)) {
    return { kind: 'busy', message: err.message };
  }
  if (/EACCES|EPERM|Permission denied/i.test(text)) return { kind: 'denied', message: err.message };
  return { kind: 'error', message: err.message };
}

/** Whether the port can be listened to: it exists, is a character device, and opens. */
async function precheck(options: ProbeOptions, setting: ProbeSetting): Promise<ProbeProblem | undefined> {
  try {
    const node = await stat(options.path);
    if (!node.isCharacterDevice()) {
      return { kind: 'not-a-device', message: `${options.path} is not a character device` };
    }
  } catch (err) {
    return problemOf(err as Error);
  }
  const PortClass = options.portClass ?? SerialPort;
  const port = new PortClass({ path: options.path, ...setting, autoOpen: false });
  try {
    await open(port);
  } catch (err) {
    return problemOf(err as Error);
  }
  await new Promise<void>((resolve) => port.close(() => resolve()));
  return undefined;
}

async function listen(options: ProbeOptions, setting: ProbeSetting, ms: number): Promise<ProbeTrial> {
  const PortClass = options.portClass ?? SerialPort;
  const port = new PortClass({ path: options.path, ...setting, autoOpen: false });
  try {
    await open(port);
  } catch (err) {
    return { setting, score: scoreTraffic(Buffer.alloc(0)), heard: [], error: (err as Error).message };
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
  const bytes = Buffer.concat(chunks);
  return { setting, score: scoreTraffic(bytes), heard: heardLines(bytes) };
}

/**
 * Listens on `path` at each setting in turn for `seconds / settings.length` and scores the traffic
 * (see scoreTraffic). Transmits nothing unless `answerEnq`. Resolves within about `seconds` (plus
 * the time to open and close the port each time); `best` is the highest score (the earlier setting
 * on a tie), or null when no setting gave recognizable traffic. A port that is missing, not a
 * device, held by another process or not allowed is not listened to: `problem` says which.
 * @throws TypeError when `seconds` is not positive or `settings` is empty.
 */
export async function probeSerialPort(options: ProbeOptions): Promise<ProbeResult> {
  const settings = options.settings ?? PROBE_SETTINGS;
  const seconds = options.seconds ?? 42;
  if (!(seconds > 0)) throw new TypeError('"seconds" must be greater than 0');
  if (settings.length === 0) throw new TypeError('"settings" must not be empty');
  const problem = await precheck(options, settings[0] as ProbeSetting);
  if (problem !== undefined) return { path: options.path, best: null, trials: [], problem };
  const ms = (seconds * 1000) / settings.length;
  const trials: ProbeTrial[] = [];
  for (const setting of settings) {
    const trial = await listen(options, setting, ms);
    trials.push(trial);
    options.onTrial?.(trial);
  }
  let best: ProbeTrial | null = null;
  for (const trial of trials) if (trial.score.score > (best?.score.score ?? 0)) best = trial;
  return { path: options.path, best, trials };
}
