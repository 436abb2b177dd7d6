import { Command, encodeCommand, type FrameEvent, MedibusFramer } from './frame.js';

/** What `attache probe --ask` sends to find a MEDIBUS device: an ICC, which changes nothing on the device. */
export const probeRequest: Buffer = encodeCommand(Command.icc);

/** The port settings a MEDIBUS device is most often set to, most likely first. */
export const probeSettings = [
  { baudRate: 19200, dataBits: 8, parity: 'even', stopBits: 1 },
  { baudRate: 9600, dataBits: 8, parity: 'even', stopBits: 1 },
] as const;

/** True when `bytes` hold the device's reply to the ICC (`SOH Q`, good checksum). */
export function recognizes(bytes: Buffer): boolean {
  const events: FrameEvent[] = [];
  new MedibusFramer().push(bytes, (e) => events.push(e));
  return events.some((e) => e.ok && e.message.kind === 'reply' && e.message.command === Command.icc);
}
