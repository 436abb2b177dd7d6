export { type Block, parseAlarms, parseIdentity, parseTexts, splitBlocks } from './blocks.js';
export { hexCode, MEASUREMENTS_CP1, type MedibusCode, measurement, medibusValue } from './codes.js';
export {
  Command,
  CR,
  checksum,
  ESC,
  encodeCommand,
  encodeReply,
  type FrameEvent,
  MedibusFramer,
  type MedibusMessage,
  SOH,
} from './frame.js';
export { MedibusDriver, type MedibusDriverOptions } from './medibus-driver.js';
export { MedibusSession } from './medibus-session.js';
export { probeRequest, probeSettings, recognizes } from './probe.js';
