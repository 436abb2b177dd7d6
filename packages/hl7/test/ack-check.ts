import {
  decodeHl7,
  decodeHl7Bytes,
  type Hl7AckCode,
  type Hl7Message,
  type Hl7Segment,
  MLLP_END,
  MLLP_START,
  parseHl7Message,
} from '@attache/hl7';

/**
 * Field `n` as a receiver reads it: split on repetitions, components and sub-components first, then
 * each piece decoded (an escape cannot span a delimiter).
 */
function fieldValue(message: Hl7Message | undefined, segment: Hl7Segment | undefined, n: number): string {
  const d = message?.delimiters ?? {
    repetition: '~',
    component: '^',
    subcomponent: '&',
    escape: '\\',
    field: '|',
  };
  const raw = segment?.raw(n) ?? '';
  return JSON.stringify(
    raw
      .split(d.repetition)
      .map((r) => r.split(d.component).map((c) => c.split(d.subcomponent).map((s) => decodeHl7(s, d)))),
  );
}

/**
 * Why `frame` is not exactly one well-formed MLLP frame holding an ACK whose MSA-1 is `code` and
 * whose MSA-2 is the acknowledged message's MSH-10 (decoded); undefined when it is. What a sender
 * reading our ACK sees: one frame, one MSA, the decision we took.
 */
export function ackProblem(
  frame: Buffer,
  code: Hl7AckCode,
  message: Hl7Message | undefined,
): string | undefined {
  if (frame[0] !== MLLP_START || frame.at(-2) !== MLLP_END || frame.at(-1) !== 0x0d)
    return 'not one MLLP frame';
  const body = frame.subarray(1, -2);
  if (body.includes(MLLP_START) || body.includes(MLLP_END)) return 'an MLLP control byte inside the frame';
  let ack: Hl7Message;
  try {
    ack = parseHl7Message(decodeHl7Bytes(body));
  } catch (err) {
    return `the ACK does not parse: ${(err as Error).message}`;
  }
  const names = ack.segments.map((s) => s.name).join(',');
  if (names !== 'MSH,MSA' && names !== 'MSH,MSA,ERR') return `segments ${names}`;
  if (ack.msh.get(9) !== 'ACK') return 'MSH-9 is not ACK';
  if (code === 'AA' && names !== 'MSH,MSA') return 'an AA with an ERR';
  const msa = ack.segments[1];
  if (msa?.get(1) !== code) return `MSA-1 ${msa?.get(1)} instead of ${code}`;
  if (fieldValue(ack, msa, 2) !== fieldValue(message, message?.msh, 10))
    return 'MSA-2 is not the message control id';
  if (message !== undefined && ack.msh.get(9, 2) !== message.msh.get(9, 2)) return 'MSH-9 trigger differs';
  return undefined;
}
