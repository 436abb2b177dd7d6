import type { ProbeResult } from './serial-probe.js';
import type { ProbeProtocol } from './traffic-score.js';

/** Keys oximeters send, with the observation each one is (docs/devices.md, "Masimo"). */
const knownKeys: Record<string, { code: string; mdc: number; unit: string }> = {
  SPO2: { code: 'MDC_PULS_OXIM_SAT_O2', mdc: 150456, unit: '%' },
  HR: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
  BPM: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
  PR: { code: 'MDC_PULS_OXIM_PULS_RATE', mdc: 149530, unit: '/min' },
  PI: { code: 'MDC_PULS_OXIM_PERF_REL', mdc: 150448, unit: '%' },
};

const kvToken = /^([A-Za-z][A-Za-z0-9_.-]{0,31})=(\S*)$/;
/** A number, or the dashes a device sends for "no value", with an optional unit suffix. */
const numeric = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)|[-.+]+)[%A-Za-z]*$/;
/** A status word: hex digits with a leading zero (`0000`, `000800`). */
const statusWord = /^0[0-9A-Fa-f]{3,7}$/;
/** Keys that name a device or a person, never a measurement: left out of the suggestion. */
const identifiers = /^(?:SN|SERIAL|ID|PID|MRN|NAME|PATIENT[A-Z_]*)$/i;
const timestamps: [RegExp, string][] = [
  [/^\d{2}\/\d{2}\/\d{2}[\t ]+\d{2}:\d{2}:\d{2}[\t ]/, 'MM/DD/YY HH:mm:ss'],
  [/^\d{2}:\d{2}:\d{2}[\t ]/, 'HH:mm:ss'],
];

/** What the lines heard say about a `kv-line` device: its keys by kind, and its timestamp layout. */
export interface HeardKeys {
  /** Keys whose every value was a number (or dashes): these become fields. */
  numbers: string[];
  /** Keys whose values look like hex status words: fields of type `hex`. */
  statusWords: string[];
  /** Keys with other values, or named like identifiers (SN, PID, MRN): left out, listed for the technician. */
  other: string[];
  timestamp?: string;
}

/** The `KEY=VALUE` keys of the lines heard, in order of first appearance, sorted by what their values are. */
export function heardKeys(lines: readonly string[]): HeardKeys {
  const kinds = new Map<string, 'number' | 'status' | 'other'>();
  for (const line of lines) {
    for (const token of line.split(/[\t ]+/)) {
      const match = kvToken.exec(token);
      if (!match) continue;
      const [, key = '', sent = ''] = match;
      // Nonin glues its event marker to the last value (`HR=072*`).
      const value = sent.replace(/\*$/, '');
      const kind = identifiers.test(key)
        ? 'other'
        : statusWord.test(value)
          ? 'status'
          : numeric.test(value)
            ? 'number'
            : 'other';
      const before = kinds.get(key);
      kinds.set(key, before === undefined || before === kind ? kind : 'other');
    }
  }
  const of = (kind: string) => [...kinds].filter(([, k]) => k === kind).map(([key]) => key);
  const layout = timestamps.find(([pattern]) => lines.length > 0 && lines.every((l) => pattern.test(l)));
  return {
    numbers: of('number'),
    statusWords: of('status'),
    other: of('other'),
    ...(layout ? { timestamp: layout[1] } : {}),
  };
}

function kvFormat(lines: readonly string[]): Record<string, unknown> {
  const keys = heardKeys(lines);
  const fields: Record<string, unknown> = {};
  for (const key of keys.numbers) {
    fields[key] = knownKeys[key.toUpperCase()] ?? {
      code: `local-${key.toLowerCase()}`,
      system: 'LOCAL',
      unit: '1',
    };
  }
  for (const key of keys.statusWords) {
    fields[key] = { code: `local-${key.toLowerCase()}`, system: 'LOCAL', unit: '1', type: 'hex' };
  }
  return {
    kind: 'kv-line',
    ...(keys.timestamp ? { timestamp: keys.timestamp } : {}),
    fields,
  };
}

/** A pattern matching `line`: its literal text, each number a named group `v1`, `v2`, … (at most 8). */
function regexFormat(line: string): Record<string, unknown> {
  let groups = 0;
  let pattern = '';
  let rest = line;
  for (
    let match = /[-+]?\d+(?:\.\d+)?/.exec(rest);
    match && groups < 8;
    match = /[-+]?\d+(?:\.\d+)?/.exec(rest)
  ) {
    pattern += rest.slice(0, match.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    groups++;
    pattern += `(?<v${groups}>[-+]?[\\d.]+|-+)`;
    rest = rest.slice(match.index + match[0].length);
  }
  pattern += rest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const fields = Object.fromEntries(
    Array.from({ length: groups }, (_, i) => [
      `v${i + 1}`,
      { code: `local-v${i + 1}`, system: 'LOCAL', unit: '1' },
    ]),
  );
  return { kind: 'regex-line', pattern: `^${pattern}$`, fields };
}

/** The `format` for a detected protocol, from the lines actually heard. */
function formatFor(protocol: ProbeProtocol, heard: readonly string[]): Record<string, unknown> {
  if (protocol === 'astm') return { kind: 'astm' };
  if (protocol === 'kv-line') return kvFormat(heard.filter((l) => l.includes('=')));
  return regexFormat(heard[0] ?? '');
}

/**
 * A device block for the config file from a probe's best trial (null when nothing was found), built
 * from what was heard: a `kv-line` device gets a field for each key whose values were numbers (known
 * oximeter keys with their MDC codes, others `LOCAL` with unit `1` to be checked) and each hex
 * status word; keys with other values (serial numbers, identifiers) are left out. A plain line device
 * gets a pattern matching the first line heard, each number a group. The block validates and matches
 * the device's lines as heard.
 */
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
    format: formatFor(best.score.protocol, best.heard),
  };
}
