import type { DeviceField, RegexLineFormat } from '@attache/core';
import { devicePattern, devicePatternProblem, GatewayError } from '@attache/core';
import { parseDeviceTime } from './kv-line.js';

/** What {@link RegexLineParser.parse} finds in one line. */
export interface ParsedRegexLine {
  /** One field per named group that matched (the group `time` excluded), in pattern order. */
  fields: DeviceField[];
  /** The device's timestamp from the group `time`, in `format.timestamp` layout, when both are set. */
  deviceTime?: string;
}

// Printable ASCII plus tab, as for kv-line: anything else means line noise or a wrong baud rate.
const printable = /^[\t\x20-\x7e]*$/;

/**
 * Parses the lines of a `regex-line` device: the line must match `format.pattern` (JavaScript
 * syntax); each named group that matched becomes a field named after the group, its value as sent.
 * The group `time` carries the device's timestamp, read in the `format.timestamp` layout.
 */
export class RegexLineParser {
  readonly #pattern: RegExp;
  readonly #format: RegexLineFormat;

  /**
   * @throws GatewayError `ATTACHE_CONFIG_INVALID` with the issue `/format/pattern` when the pattern is
   * not a valid regular expression or cannot be matched in linear time (see `devicePatternProblem`;
   * the caller prefixes the device's path).
   */
  constructor(format: RegexLineFormat) {
    const problem = devicePatternProblem(format.pattern);
    if (problem !== undefined) {
      throw new GatewayError('ATTACHE_CONFIG_INVALID', `format.pattern: ${problem}`, {
        issues: [{ path: '/format/pattern', message: problem }],
      });
    }
    this.#pattern = devicePattern(format.pattern);
    this.#format = format;
  }

  /**
   * Parses one line (without its delimiter). Pure.
   * @throws GatewayError `ATTACHE_MALFORMED` when the line holds a non-printable byte, does not match,
   * or its `time` group does not fit the layout. The message never contains the line's content.
   */
  parse(line: string): ParsedRegexLine {
    if (!printable.test(line)) throw new GatewayError('ATTACHE_MALFORMED', 'non-printable or non-ASCII byte');
    const groups = this.#pattern.exec(line)?.groups;
    if (groups === undefined) throw new GatewayError('ATTACHE_MALFORMED', 'line does not match the pattern');
    const fields: DeviceField[] = [];
    for (const [name, value] of Object.entries(groups)) {
      if (name !== 'time' && value !== undefined) fields.push({ name, value });
    }
    const time = groups.time;
    const layout = this.#format.timestamp;
    if (time === undefined || layout === undefined) return { fields };
    return { fields, deviceTime: parseDeviceTime(time, layout) };
  }
}
