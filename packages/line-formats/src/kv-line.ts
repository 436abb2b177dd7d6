import type { DeviceField, KvLineFormat } from '@attache/core';
import { GatewayError } from '@attache/core';

/** What {@link parseKvLine} finds in one line. */
export interface ParsedKvLine {
  /** `KEY=VALUE` tokens in the order sent, values as sent (`098%`, `---`). */
  fields: DeviceField[];
  /** Bare tokens (`*`, `B`, `F`). */
  markers: string[];
  /** The device's timestamp as `YYYY-MM-DDTHH:MM:SS` or `HH:MM:SS`, when `format.timestamp` is set. */
  deviceTime?: string;
}

export type TimestampLayout = NonNullable<KvLineFormat['timestamp']>;

/** Position of year, month and day in the date token of each layout. */
const dateOrder: Record<Exclude<TimestampLayout, 'HH:mm:ss'>, readonly ('Y' | 'M' | 'D')[]> = {
  'MM/DD/YY HH:mm:ss': ['M', 'D', 'Y'],
  'DD/MM/YY HH:mm:ss': ['D', 'M', 'Y'],
  'YY/MM/DD HH:mm:ss': ['Y', 'M', 'D'],
};

// Printable ASCII plus tab; anything else (control bytes, bytes >= 0x7F) means line noise or a wrong baud rate.
const printable = /^[\t\x20-\x7e]*$/;
// Nonin glues its event marker to the last value (`SPO2=096 HR=071*`); BT4000 manual p. 35:
// https://www.manualshelf.com/manual/nonin-medical/bt4000/user-s-manual-english/page-35.html
const gluedMarker = '*';

function malformed(reason: string): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', reason);
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function parseTime(token: string | undefined): string {
  const match = /^(\d{2}):(\d{2}):(\d{2})$/.exec(token ?? '');
  if (!match || Number(match[1]) > 23 || Number(match[2]) > 59 || Number(match[3]) > 59) {
    throw malformed('missing or invalid device time');
  }
  return token as string;
}

function parseDate(token: string | undefined, layout: keyof typeof dateOrder): string {
  const match = /^(\d{2})\/(\d{2})\/(\d{2})$/.exec(token ?? '');
  if (!match) throw malformed('missing or invalid device date');
  const order = dateOrder[layout];
  const part = (key: 'Y' | 'M' | 'D'): number => Number(match[order.indexOf(key) + 1]);
  const year = 2000 + part('Y');
  const month = part('M');
  const day = part('D');
  // Date.UTC rolls 31 April over to 1 May: a round trip tells a real calendar date.
  const date = new Date(Date.UTC(year, month - 1, day));
  if (month < 1 || day < 1 || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    throw malformed('invalid device date');
  }
  return `${year}-${pad(month)}-${pad(day)}`;
}

/**
 * Reads a device timestamp written in `layout` (`HH:mm:ss`, `MM/DD/YY HH:mm:ss`…; tokens separated
 * by spaces or tabs) as `YYYY-MM-DDTHH:MM:SS` or `HH:MM:SS`.
 * Throws a GatewayError `ATTACHE_MALFORMED` (without the text) when it does not fit the layout.
 */
export function parseDeviceTime(text: string, layout: TimestampLayout): string {
  const tokens = text.split(/[\t ]+/).filter((token) => token.length > 0);
  const time = takeTimestamp(tokens, layout);
  if (tokens.length > 0) throw malformed('unexpected text after the device time');
  return time;
}

function takeTimestamp(tokens: string[], layout: TimestampLayout): string {
  if (layout === 'HH:mm:ss') return parseTime(tokens.shift());
  const date = parseDate(tokens.shift(), layout);
  return `${date}T${parseTime(tokens.shift())}`;
}

/**
 * Parses one line of `KEY=VALUE` tokens (without its delimiter). Pure: no I/O, no logging.
 * Throws a GatewayError `ATTACHE_MALFORMED` when the line holds a byte that is not printable ASCII,
 * no `KEY=VALUE` token, a token with an empty key, or (with `format.timestamp`) a missing or invalid
 * timestamp. Error messages never contain the line's content.
 */
export function parseKvLine(line: string, format: KvLineFormat): ParsedKvLine {
  if (!printable.test(line)) throw malformed('non-printable or non-ASCII byte');
  const tokens = line.split(/[\t ]+/).filter((token) => token.length > 0);
  const deviceTime = format.timestamp === undefined ? undefined : takeTimestamp(tokens, format.timestamp);
  const fields: DeviceField[] = [];
  const markers: string[] = [];
  for (const token of tokens) {
    const eq = token.indexOf('=');
    if (eq === -1) {
      markers.push(token);
      continue;
    }
    if (eq === 0) throw malformed('token with an empty key');
    let value = token.slice(eq + 1);
    if (value.length > 1 && value.endsWith(gluedMarker)) {
      value = value.slice(0, -gluedMarker.length);
      markers.push(gluedMarker);
    }
    fields.push({ name: token.slice(0, eq), value });
  }
  if (fields.length === 0) throw malformed('no KEY=VALUE token');
  return deviceTime === undefined ? { fields, markers } : { fields, markers, deviceTime };
}
