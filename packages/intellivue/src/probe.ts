import { encodeFrame, type FrameEvent, IntelliVueFramer } from './frame.js';
import { associationRequest, classify } from './pdu.js';

/** What `attache probe --ask` sends to find an IntelliVue monitor: an Association Request. */
export const probeRequest: Buffer = encodeFrame(associationRequest());

/** The MIB/RS232 port runs at 115200 baud 8N1. */
export const probeSettings = [{ baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1 }] as const;

/** True when `bytes` hold a Data Export frame with a good FCS answering the association (accept or refuse). */
export function recognizes(bytes: Buffer): boolean {
  const events: FrameEvent[] = [];
  new IntelliVueFramer().push(bytes, (e) => events.push(e));
  return events.some((e) => {
    if (!e.ok) return false;
    const kind = classify(e.pdu).kind;
    return kind === 'accept' || kind === 'refuse';
  });
}
