export { BOF, EOF, ESC, encodeFrame, type FrameEvent, fcs16, IntelliVueFramer } from './frame.js';
export { IntelliVueDriver, type IntelliVueDriverOptions } from './intellivue-driver.js';
export { IntelliVueSession } from './intellivue-session.js';
export { floatType, type PollContent, pollContent, UNITS } from './observations.js';
export {
  associationRequest,
  Cmd,
  classify,
  type DataPdu,
  MDS_CREATE,
  MOC_MDS,
  mdsCreateResult,
  POLL_EXT,
  PolledObject,
  pollRequest,
  Reader,
  type Received,
  RoType,
  releaseResponse,
  Spdu,
} from './pdu.js';
export { probeRequest, probeSettings, recognizes } from './probe.js';
