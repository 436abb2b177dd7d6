export { type ParsedKvLine, parseDeviceTime, parseKvLine, type TimestampLayout } from './kv-line.js';
export { type ParsedRegexLine, RegexLineParser } from './regex-line.js';
