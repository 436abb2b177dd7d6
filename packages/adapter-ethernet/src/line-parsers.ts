import type { DeviceField, DeviceReading, KvLineFormat, RegexLineFormat } from '@attache/core';
import { GatewayError } from '@attache/core';

/** The parts of a reading one line gives. */
export type LineReadingParts = Pick<DeviceReading, 'protocol' | 'fields' | 'markers' | 'deviceTime'>;

type Layout = NonNullable<KvLineFormat['timestamp']>;

const printable = /^[\t\x20-\x7e]*$/;
/** Positions of year, month and day in the date token, per layout. */
const dateOrder: Record<Exclude<Layout, 'HH:mm:ss'>, readonly number[]> = {
  'MM/DD/YY HH:mm:ss': [3, 1, 2],
  'DD/MM/YY HH:mm:ss': [3, 2, 1],
  'YY/MM/DD HH:mm:ss': [1, 2, 3],
};

function malformed(reason: string): GatewayError {
  return new GatewayError('ATTACHE_MALFORMED', reason);
}

function time(token: string | undefined): string {
  const m = /^(\d{2}):(\d{2}):(\d{2})$/.exec(token ?? '');
  if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || Number(m[3]) > 59)
    throw malformed('invalid device time');
  return token as string;
}

function date(token: string | undefined, layout: keyof typeof dateOrder): string {
  const m = /^(\d{2})\/(\d{2})\/(\d{2})$/.exec(token ?? '');
  if (!m) throw malformed('invalid device date');
  const [yi = 0, mi = 0, di = 0] = dateOrder[layout];
  const [y, mo, d] = [2000 + Number(m[yi]), Number(m[mi]), Number(m[di])];
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (mo < 1 || d < 1 || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
    throw malformed('invalid device date');
  }
  return `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** A device timestamp (`HH:mm:ss`, or a date and a time) in the record's `deviceTime` form. */
export function lineTimestamp(tokens: string[], layout: Layout): string {
  if (layout === 'HH:mm:ss') return time(tokens.shift());
  const day = date(tokens.shift(), layout);
  return `${day}T${time(tokens.shift())}`;
}

/**
 * A line of `KEY=VALUE` tokens (the same rules as the RS-232 adapter's kv-line): tokens separated by
 * spaces or tabs, bare tokens become markers, a `*` glued to a value (Nonin) is split off, the
 * leading timestamp per `format.timestamp`. Throws a GatewayError `ATTACHE_MALFORMED` for a
 * non-printable byte, no `KEY=VALUE` token, an empty key or a bad timestamp.
 */
export function parseKvTcpLine(line: string, format: KvLineFormat): LineReadingParts {
  if (!printable.test(line)) throw malformed('non-printable or non-ASCII byte');
  const tokens = line.split(/[\t ]+/).filter((t) => t.length > 0);
  const deviceTime = format.timestamp === undefined ? undefined : lineTimestamp(tokens, format.timestamp);
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
    if (value.length > 1 && value.endsWith('*')) {
      value = value.slice(0, -1);
      markers.push('*');
    }
    fields.push({ name: token.slice(0, eq), value });
  }
  if (fields.length === 0) throw malformed('no KEY=VALUE token');
  const parts: LineReadingParts = { protocol: 'kv-line', fields, markers };
  if (deviceTime !== undefined) parts.deviceTime = deviceTime;
  return parts;
}

/**
 * Compiles a regex-line format's pattern. Throws a GatewayError `ATTACHE_CONFIG_INVALID` when the
 * pattern is not a valid JavaScript regular expression.
 */
export function compileLinePattern(format: RegexLineFormat): RegExp {
  try {
    return new RegExp(format.pattern);
  } catch (err) {
    throw new GatewayError('ATTACHE_CONFIG_INVALID', 'format.pattern is not a valid regular expression', {
      cause: err,
      issues: [{ path: '/format/pattern', message: 'not a valid regular expression' }],
    });
  }
}

/**
 * A line matched by `pattern`: each named group that matched becomes a field; the group `time`
 * holds the device's timestamp in `format.timestamp` layout. Throws a GatewayError
 * `ATTACHE_MALFORMED` when the line does not match or its time is invalid.
 */
export function parseRegexTcpLine(line: string, pattern: RegExp, format: RegexLineFormat): LineReadingParts {
  const groups = pattern.exec(line)?.groups;
  if (groups === undefined) throw malformed('line does not match the pattern');
  const fields: DeviceField[] = [];
  let deviceTime: string | undefined;
  for (const [name, value] of Object.entries(groups)) {
    if (value === undefined) continue;
    if (name === 'time' && format.timestamp !== undefined) {
      deviceTime = lineTimestamp(value.trim().split(/\s+/), format.timestamp);
    } else {
      fields.push({ name, value });
    }
  }
  const parts: LineReadingParts = { protocol: 'regex-line', fields, markers: [] };
  if (deviceTime !== undefined) parts.deviceTime = deviceTime;
  return parts;
}
