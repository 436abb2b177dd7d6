import type { Hl7Message, Hl7Segment } from './hl7-parser.js';

/** Components of an XPN name: family, given, middle, suffix, prefix. */
const XPN = [1, 2, 3, 4, 5];
/** Components of an XCN person: id, family, given, middle, suffix, prefix. */
const XCN = [1, 2, 3, 4, 5, 6];
/** CX identifier: the id. */
const CX = [1];
/** XAD address: street, other designation, city, postal code. */
const XAD = [1, 2, 3, 5];
/** XTN telecom: number, e-mail, area code, local number. */
const XTN = [1, 4, 6, 7];

/**
 * The people fields of each segment (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)): patient ids, names, address and phones;
 * relatives; attending, referring, consulting and admitting doctors; who entered, verified, ordered,
 * collected, interpreted, transcribed or observed. NDL fields (OBR-32 to 35) carry the person in
 * the sub-components of their first component.
 */
const peopleFields: Record<string, ReadonlyArray<readonly [number, readonly number[]]>> = {
  PID: [
    [2, CX],
    [3, CX],
    [4, CX],
    [5, XPN],
    [6, XPN],
    [9, XPN],
    [11, XAD],
    [13, XTN],
    [14, XTN],
    [18, CX],
    [19, [1]],
    [20, [1]],
    [21, CX],
  ],
  NK1: [
    [2, XPN],
    [4, XAD],
    [5, XTN],
    [6, XTN],
  ],
  PV1: [
    [7, XCN],
    [8, XCN],
    [9, XCN],
    [17, XCN],
    [19, CX],
    [50, CX],
    [52, XCN],
  ],
  PD1: [[4, XCN]],
  ORC: [
    [10, XCN],
    [11, XCN],
    [12, XCN],
    [19, XCN],
  ],
  OBR: [
    [10, XCN],
    [16, XCN],
    [28, XCN],
    [32, [1]],
    [33, [1]],
    [34, [1]],
    [35, [1]],
  ],
  OBX: [[16, XCN]],
  PRT: [[5, XCN]],
};

/**
 * The names, ids, addresses and phone numbers the message itself carries in its people fields, for
 * the normalizer to remove from free text. Sub-components are split apart (`&SMITH&JOHN`).
 */
export function hl7People(message: Hl7Message): string[] {
  const people: string[] = [];
  const sub = message.delimiters.subcomponent;
  for (const segment of message.segments) {
    const fields = peopleFields[segment.name];
    if (fields === undefined) continue;
    for (const [n, wanted] of fields) addField(people, segment, n, wanted, sub);
  }
  return people;
}

function addField(
  people: string[],
  segment: Hl7Segment,
  n: number,
  wanted: readonly number[],
  sub: string,
): void {
  const count = segment.repetitionCount(n);
  for (let rep = 0; rep < count; rep++) {
    const components = segment.components(n, rep);
    for (const c of wanted) {
      for (const part of (components[c - 1] ?? '').split(sub)) if (part.trim() !== '') people.push(part);
    }
  }
}

/** NTE-3, its repetitions joined by a space ('' when empty). */
export function nteText(nte: Hl7Segment): string {
  const count = nte.repetitionCount(3);
  const lines: string[] = [];
  for (let rep = 0; rep < count; rep++) lines.push(nte.components(3, rep).join(' ').trim());
  return lines.filter((l) => l !== '').join(' ');
}
