export { type LineFrame, LineFramer, type LineFramerOptions } from './line-framer.js';
export { Rs232Adapter, type Rs232AdapterOptions, type SerialPortClass } from './rs232-adapter.js';
export { DEFAULT_LINK_DIRS, listSerialPorts, type SerialPortEntry } from './serial-ports.js';
export {
  PROBE_SETTINGS,
  type ProbeOptions,
  type ProbeResult,
  type ProbeSetting,
  type ProbeTrial,
  probeConfigSnippet,
  probeSerialPort,
} from './serial-probe.js';
export { type ProbeProtocol, scoreTraffic, type TrafficScore } from './traffic-score.js';
