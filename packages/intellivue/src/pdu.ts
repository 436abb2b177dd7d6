/** Session-layer PDU types: the first byte of an association-control PDU. */
export const Spdu = {
  connect: 0x0d,
  accept: 0x0e,
  refuse: 0x0c,
  finish: 0x09,
  disconnect: 0x0a,
  abort: 0x19,
} as const;

/** Remote-operation PDU types (ROapdus.ro_type). */
export const RoType = { invoke: 1, result: 2, error: 3, linkedResult: 5 } as const;
/** Command types. */
export const Cmd = { eventReport: 0, confirmedEventReport: 1, confirmedAction: 7 } as const;
/** The data-export session id and presentation context of every data PDU (SPpdu). */
const SESSION_ID = 0xe100;
const CONTEXT_ID = 2;
/** NOM_NOTI_MDS_CREAT, NOM_ACT_POLL_MDIB_DATA_EXT, NOM_MOC_VMS_MDS, NOM_PART_OBJ. */
export const MDS_CREATE = 0x0d06;
export const POLL_EXT = 0xf13b;
export const MOC_MDS = 33;
const PART_OBJ = 1;
/** The polled object types: numerics (NOM_MOC_VMO_METRIC_NU) and alerts (NOM_MOC_VMO_AL_MON). */
export const PolledObject = { numerics: 6, alerts: 54, mds: MOC_MDS } as const;

/**
 * The session, presentation and ACSE envelope of the association request, as the Data Export guide
 * gives it (BER with indefinite lengths; its length indicators count the 72 bytes of user data that
 * follow). The user data and the closing end-of-contents octets are built below.
 */
const AARQ_ENVELOPE = Buffer.from(
  '0dec0508130100160102800014020002c1dc3180a0808001010000a280a003000001a48030800201' +
    '01060452010001308006025101000000003080020102060c2a8648ce14020100000001013080060c' +
    '2a8648ce140201000000020100000000000061803080020101a0806080a180060c2a8648ce140201' +
    '00000003010000be802880060c2a8648ce14020100000001010201028148',
  'hex',
);

/** MDSEUserInfoStd of a client asking for the poll profile with extended polls (72 bytes). */
function userInfo(): Buffer {
  const b = Buffer.alloc(72);
  b.writeUInt32BE(0x80000000, 0); // protocol_version MDDL_VERSION1
  b.writeUInt32BE(0x40000000, 4); // nomenclature_version NOMEN_VERSION
  b.writeUInt32BE(0, 8); // functional_units
  b.writeUInt32BE(0x80000000, 12); // system_type SYST_CLIENT
  b.writeUInt32BE(0x20000000, 16); // startup_mode HOT_START
  b.writeUInt32BE(0, 20); // option_list: count 0, length 0
  b.writeUInt16BE(1, 24); // supported_aprofiles: one attribute
  b.writeUInt16BE(44, 26);
  b.writeUInt16BE(0x0001, 28); // NOM_POLL_PROFILE_SUPPORT
  b.writeUInt16BE(40, 30);
  b.writeUInt32BE(0x80000000, 32); // poll_profile_revision POLL_PROFILE_REV_0
  b.writeUInt32BE(2500, 36); // min_poll_period, 1/8 ms
  b.writeUInt32BE(2500, 40); // max_mtu_rx
  b.writeUInt32BE(1000, 44); // max_mtu_tx
  b.writeUInt32BE(0xffffffff, 48); // max_bw_tx
  b.writeUInt32BE(0x60000000, 52); // options: dynamic create and delete of objects
  b.writeUInt16BE(1, 56); // optional_packages: one attribute
  b.writeUInt16BE(12, 58);
  b.writeUInt16BE(0xf001, 60); // NOM_ATTR_POLL_PROFILE_EXT
  b.writeUInt16BE(8, 62);
  b.writeUInt32BE(0x8c000000, 64); // extended poll options (1 s numerics, waves, alerts)
  b.writeUInt32BE(0, 68); // ext_attr: count 0, length 0
  return b;
}

/** The Association Request the client sends first. */
export function associationRequest(): Buffer {
  return Buffer.concat([AARQ_ENVELOPE, userInfo(), Buffer.alloc(16)]);
}

/** The Release Response to a monitor's Release Request. */
export function releaseResponse(): Buffer {
  return Buffer.from([Spdu.disconnect, 0x01, 0x00]);
}

/** SPpdu + ROapdus + (RO)IV/RS header around `body`. */
function dataPdu(roType: number, invokeId: number, command: number, body: Buffer): Buffer {
  const head = Buffer.alloc(14);
  head.writeUInt16BE(SESSION_ID, 0);
  head.writeUInt16BE(CONTEXT_ID, 2);
  head.writeUInt16BE(roType, 4);
  head.writeUInt16BE(body.length + 6, 6);
  head.writeUInt16BE(invokeId, 8);
  head.writeUInt16BE(command, 10);
  head.writeUInt16BE(body.length, 12);
  return Buffer.concat([head, body]);
}

/** The MDS Create Event Result answering the monitor's MDS Create Event Report. */
export function mdsCreateResult(invokeId: number, managedObject: Buffer): Buffer {
  const body = Buffer.alloc(14);
  managedObject.copy(body, 0, 0, 6);
  body.writeUInt32BE(0, 6); // current_time (relative)
  body.writeUInt16BE(MDS_CREATE, 10);
  body.writeUInt16BE(0, 12);
  return dataPdu(RoType.result, invokeId, Cmd.confirmedEventReport, body);
}

/** An extended poll request for every attribute of the objects of `objectType`. */
export function pollRequest(invokeId: number, pollNumber: number, objectType: number): Buffer {
  const body = Buffer.alloc(26);
  body.writeUInt16BE(MOC_MDS, 0); // managed_object: the MDS, context 0, handle 0
  body.writeUInt32BE(0, 6); // scope
  body.writeUInt16BE(POLL_EXT, 10);
  body.writeUInt16BE(12, 12);
  body.writeUInt16BE(pollNumber, 14);
  body.writeUInt16BE(PART_OBJ, 16);
  body.writeUInt16BE(objectType, 18);
  body.writeUInt16BE(0, 20); // polled_attr_grp: all
  body.writeUInt32BE(0, 22); // poll_ext_attr: an empty attribute list
  return dataPdu(RoType.invoke, invokeId, Cmd.confirmedAction, body);
}

/** A bounds-checked big-endian reader: reading past the end throws a RangeError (malformed PDU). */
export class Reader {
  readonly #buf: Buffer;
  #at: number;
  readonly #end: number;
  constructor(buf: Buffer, at = 0, end = buf.length) {
    this.#buf = buf;
    this.#at = at;
    this.#end = end;
  }
  get at(): number {
    return this.#at;
  }
  get left(): number {
    return this.#end - this.#at;
  }
  #take(n: number): number {
    if (n > this.left) throw new RangeError('PDU shorter than its lengths say');
    const at = this.#at;
    this.#at += n;
    return at;
  }
  u8(): number {
    return this.#buf.readUInt8(this.#take(1));
  }
  u16(): number {
    return this.#buf.readUInt16BE(this.#take(2));
  }
  u32(): number {
    return this.#buf.readUInt32BE(this.#take(4));
  }
  /** A reader over the next `n` bytes, which this one skips. */
  sub(n: number): Reader {
    const at = this.#take(n);
    return new Reader(this.#buf, at, at + n);
  }
  bytes(n: number): Buffer {
    const at = this.#take(n);
    return this.#buf.subarray(at, at + n);
  }
}

/** A data PDU's remote-operation header. */
export interface DataPdu {
  roType: number;
  invokeId: number;
  command: number;
  /** ROLRS only: 1 first, 2 middle, 3 last part of a linked reply. */
  linkedState?: number;
  /** The operation's argument or result. */
  body: Reader;
}

/** What a received PDU is. */
export type Received =
  | { kind: 'accept' | 'refuse' | 'finish' | 'disconnect' | 'abort' }
  | { kind: 'data'; data: DataPdu }
  | { kind: 'unknown'; first: number };

/** Classifies a PDU; throws a RangeError when a data PDU is shorter than its lengths say. */
export function classify(pdu: Buffer): Received {
  switch (pdu[0]) {
    case Spdu.accept:
      return { kind: 'accept' };
    case Spdu.refuse:
      return { kind: 'refuse' };
    case Spdu.finish:
      return { kind: 'finish' };
    case Spdu.disconnect:
      return { kind: 'disconnect' };
    case Spdu.abort:
      return { kind: 'abort' };
    default:
      break;
  }
  const r = new Reader(pdu);
  if (pdu.length < 4 || r.u16() !== SESSION_ID) return { kind: 'unknown', first: pdu[0] ?? 0 };
  r.u16();
  const roType = r.u16();
  const ro = r.sub(r.u16());
  let linkedState: number | undefined;
  if (roType === RoType.linkedResult) {
    linkedState = ro.u8();
    ro.u8();
  }
  const invokeId = ro.u16();
  if (roType === RoType.error)
    return { kind: 'data', data: { roType, invokeId, command: ro.u16(), body: ro } };
  const command = ro.u16();
  const body = ro.sub(ro.u16());
  return { kind: 'data', data: { roType, invokeId, command, body, ...(linkedState ? { linkedState } : {}) } };
}
