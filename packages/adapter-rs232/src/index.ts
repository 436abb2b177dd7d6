export { type HeardKeys, heardKeys, probeConfigSnippet } from './probe-snippet.js';
export {
  presenceCheckMs,
  Rs232Adapter,
  type Rs232AdapterOptions,
  type SerialPortClass,
} from './rs232-adapter.js';
export { type AskOptions, askSerialPort } from './serial-ask.js';
export { serialLink } from './serial-link.js';
export { DEFAULT_LINK_DIRS, listSerialPorts, portHolders, type SerialPortEntry } from './serial-ports.js';
export {
  PROBE_SETTINGS,
  type ProbeOptions,
  type ProbeProblem,
  type ProbeResult,
  type ProbeSetting,
  type ProbeTrial,
  probeSerialPort,
} from './serial-probe.js';
export { type ProbeProtocol, scoreTraffic, type TrafficScore } from './traffic-score.js';
