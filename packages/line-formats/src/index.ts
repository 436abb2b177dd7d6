export { isBlankLine } from './blank-line.js';
export { type ParsedKvLine, parseDeviceTime, parseKvLine, type TimestampLayout } from './kv-line.js';
export { type ParsedRegexLine, RegexLineParser } from './regex-line.js';
