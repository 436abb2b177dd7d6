export { type ParsedKvLine, parseKvLine } from './kv-line.js';
export { type LineFrame, LineFramer, type LineFramerOptions } from './line-framer.js';
export { Rs232Adapter, type Rs232AdapterOptions, type SerialPortClass } from './rs232-adapter.js';
