export { isBlankLine } from './blank-line.js';
export { type ParsedKvLine, parseDeviceTime, parseKvLine, type TimestampLayout } from './kv-line.js';
export { type LineEvent, LineFramer, type LineFramerOptions } from './line-framer.js';
export {
  LineDriver,
  type LineDriverOptions,
  type LineFormat,
  LineSession,
  maxLinesInFlight,
} from './line-session.js';
export { type ParsedRegexLine, RegexLineParser } from './regex-line.js';
