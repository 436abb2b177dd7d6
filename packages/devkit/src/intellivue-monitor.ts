import { type DevicePort, openDevicePort } from './device-port.js';
/** One numeric a simulated monitor reports. */
export interface IntelliVueSimNumeric {
  /** Physio id (the MDC term code, partition SCADA). */
  physioId: number;
  /** Unit code (MDC_DIM term code). */
  unitCode: number;
  /** Value × 10^exponent is sent; null sends the NaN mantissa. */
  value: number | null;
  /** Decimal exponent of the FLOAT-Type. Default 0. */
  exponent?: number;
  /** MeasurementState bits. Default 0 (valid). */
  state?: number;
}

/** One alert a simulated monitor reports. */
export interface IntelliVueSimAlert {
  /** Physio id of the source. */
  source: number;
  /** Alert code (partition EVT). */
  code: number;
  /** al_type: 4 high, 2 medium, 1 low physiological; 1024/512/256 technical. */
  type: number;
  text: string;
  technical?: boolean;
}

/** Faults an {@link IntelliVueMonitorSimulator} injects. */
export interface IntelliVueSimFaults {
  /** The next n replies (association accept, poll results) are not sent. */
  drop: number;
  /** The next n frames go out with a wrong FCS. */
  corrupt: number;
  /** While true, nothing is answered. */
  silent: boolean;
  /** Numerics results (0-based, over the simulator's life) sent with a wrong FCS. */
  corruptNumerics: number[];
}

/** Options of {@link IntelliVueMonitorSimulator}. */
export interface IntelliVueMonitorSimulatorOptions {
  /** The serial path for `open()`. Not needed with `attach()`. */
  path?: string;
  /** Send each numerics result in two linked parts (ROLRS first, last). Default false. */
  linked?: boolean;
  /** Called as each poll result is written, with the polled object type (a benchmark times replies). */
  onReply?: (objectType: number) => void;
}

const BOF = 0xc0;
const EOF = 0xc1;
const ESC = 0x7d;

/** FCS-16 of RFC 1662, computed here independently of the gateway's driver. */
function fcs(bytes: number[]): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0x8408 : crc >>> 1;
  }
  return ~crc & 0xffff;
}

function frame(pdu: Buffer, corrupt: boolean): Buffer {
  const body = [0x11, 0x01, pdu.length >> 8, pdu.length & 0xff, ...pdu];
  const sum = fcs(body) ^ (corrupt ? 1 : 0);
  body.push(sum & 0xff, sum >> 8);
  const out = [BOF];
  for (const b of body) out.push(...(b === BOF || b === EOF || b === ESC ? [ESC, b ^ 0x20] : [b]));
  out.push(EOF);
  return Buffer.from(out);
}

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [...u16(n >>> 16), ...u16(n & 0xffff)];
const list = (items: number[][]) => [...u16(items.length), ...u16(items.flat().length), ...items.flat()];
const ava = (id: number, value: number[]) => [...u16(id), ...u16(value.length), ...value];

function floatType(value: number | null, exponent: number): number[] {
  const mantissa = value === null ? 0x7fffff : Math.round(value / 10 ** exponent) & 0xffffff;
  return u32((((exponent & 0xff) << 24) | mantissa) >>> 0);
}

function nuObs(n: IntelliVueSimNumeric): number[] {
  return [
    ...u16(n.physioId),
    ...u16(n.state ?? 0),
    ...u16(n.unitCode),
    ...floatType(n.value, n.exponent ?? 0),
  ];
}

/** SPpdu + ROapdus + RO header + body. */
function dataPdu(roType: number, invokeId: number, command: number, body: number[], linked?: number): Buffer {
  const ro = [
    ...(linked === undefined ? [] : [linked, 1]),
    ...u16(invokeId),
    ...u16(command),
    ...u16(body.length),
    ...body,
  ];
  return Buffer.from([...u16(0xe100), ...u16(2), ...u16(roType), ...u16(ro.length), ...ro]);
}

/**
 * A Philips IntelliVue monitor's MIB/RS232 port as the Data Export protocol shows it (the rules are in
 * `@attache/intellivue`'s README), written separately from the gateway's driver: it accepts an
 * Association Request, sends its MDS Create Event Report, and answers extended polls of numerics
 * (heart rate, SpO₂, respiration, NIBP as a compound value, temperature; values change with every poll)
 * and alerts. Frames with a bad FCS are counted and ignored. Faults: dropped replies, corrupt FCS,
 * silence, and `abort()` / `release()` from the monitor's side.
 */
export class IntelliVueMonitorSimulator {
  readonly faults: IntelliVueSimFaults = { drop: 0, corrupt: 0, silent: false, corruptNumerics: [] };
  alerts: IntelliVueSimAlert[] = [];
  /** Association requests received. */
  associations = 0;
  /** MDS create results received (associations completed). */
  mdsResults = 0;
  /** Poll requests received, by polled object type. */
  readonly polls = new Map<number, number>();
  /** Release responses received. */
  releaseResponses = 0;
  badFrames = 0;
  /** The numerics of every numerics result sent, in order. */
  readonly sentNumerics: IntelliVueSimNumeric[][] = [];
  /** Indexes into `sentNumerics` of the results sent with a wrong FCS. */
  readonly corrupted: number[] = [];
  /** After this many numerics results the monitor goes silent (so a test knows exactly what was sent). */
  numericsLimit = Number.POSITIVE_INFINITY;
  readonly #options: IntelliVueMonitorSimulatorOptions;
  #write: (bytes: Buffer) => void = () => undefined;
  #port: DevicePort | undefined;
  #buf: number[] = [];
  #inFrame = false;
  #escaped = false;

  constructor(options: IntelliVueMonitorSimulatorOptions = {}) {
    this.#options = options;
  }

  attach(write: (bytes: Buffer) => void): void {
    this.#write = write;
  }

  async open(): Promise<void> {
    const path = this.#options.path;
    if (path === undefined) throw new TypeError('"path" is required to open the simulator');
    const port = await openDevicePort(path, 115200, (chunk) => this.receive(chunk));
    this.#port = port;
    this.#write = port.write;
  }

  async close(): Promise<void> {
    const port = this.#port;
    this.#port = undefined;
    await port?.close();
  }

  /** Polls received for `objectType` (6 numerics, 54 alerts, 33 the MDS). */
  polled(objectType: number): number {
    return this.polls.get(objectType) ?? 0;
  }

  /** The monitor aborts the association. */
  abort(): void {
    this.#send(Buffer.from([0x19, 0x2e, 0x11, 0x01, 0x03]));
  }

  /** The monitor asks to release the association; the host must answer. */
  release(): void {
    this.#send(Buffer.from([0x09, 0x18, 0xc1, 0x16, 0x61, 0x80]));
  }

  receive(chunk: Buffer): void {
    for (const byte of chunk) {
      if (byte === BOF) {
        this.#buf = [];
        this.#inFrame = true;
        this.#escaped = false;
      } else if (!this.#inFrame) continue;
      else if (byte === EOF) {
        this.#inFrame = false;
        this.#handle(this.#buf);
      } else if (byte === ESC) this.#escaped = true;
      else if (this.#buf.length < 8192) {
        this.#buf.push(this.#escaped ? byte ^ 0x20 : byte);
        this.#escaped = false;
      }
    }
  }

  #handle(body: number[]): void {
    const n = body.length;
    if (n < 6 || fcs(body.slice(0, n - 2)) !== ((body[n - 2] as number) | ((body[n - 1] as number) << 8))) {
      this.badFrames++;
      return;
    }
    const pdu = Buffer.from(body.slice(4, n - 2));
    if (pdu[0] === 0x0d) {
      this.associations++;
      if (this.#reply(Buffer.from([0x0e, 0x04, 0x05, 0x08, 0x13, 0x01]))) this.#mdsCreate();
      return;
    }
    if (pdu[0] === 0x0a) {
      this.releaseResponses++;
      return;
    }
    if (pdu.length < 20 || pdu.readUInt16BE(0) !== 0xe100) return;
    const roType = pdu.readUInt16BE(4);
    const invokeId = pdu.readUInt16BE(8);
    const command = pdu.readUInt16BE(10);
    if (roType === 2 && command === 1) this.mdsResults++;
    if (roType !== 1 || command !== 7 || pdu.readUInt16BE(24) !== 0xf13b) return;
    const objectType = pdu.readUInt16BE(32);
    this.polls.set(objectType, this.polled(objectType) + 1);
    this.#pollResult(invokeId, pdu.readUInt16BE(28), objectType);
  }

  #mdsCreate(): void {
    const body = [...u16(33), ...u16(0), ...u16(0), ...u32(0), ...u16(0x0d06)];
    const info = [...u16(33), ...u16(0), ...u16(0), ...list([])];
    this.#send(dataPdu(1, 1, 1, [...body, ...u16(info.length), ...info]));
  }

  #numerics(): IntelliVueSimNumeric[] {
    const k = this.sentNumerics.length;
    const values: IntelliVueSimNumeric[] = [
      { physioId: 0x4182, unitCode: 0x0aa0, value: 60 + (k % 5) },
      { physioId: 0x4bb8, unitCode: 0x0220, value: 97 - (k % 3) },
      { physioId: 0x500a, unitCode: 0x0ae0, value: 14 + (k % 2) },
      { physioId: 0x4a05, unitCode: 0x0f20, value: 120 },
      { physioId: 0x4a06, unitCode: 0x0f20, value: 80 },
      { physioId: 0x4a07, unitCode: 0x0f20, value: 93 },
      { physioId: 0x4b48, unitCode: 0x17a0, value: 36.6 + (k % 4) / 10, exponent: -1 },
    ];
    this.sentNumerics.push(values);
    return values;
  }

  /** A poll result: ActionResult and PollMdibDataReplyExt with one context of observations. */
  #pollResult(invokeId: number, pollNumber: number, objectType: number): void {
    if (this.faults.silent) return;
    let objects: number[][] = [];
    let corrupt = false;
    if (objectType === 6) {
      const index = this.sentNumerics.length;
      corrupt = this.faults.corruptNumerics.includes(index);
      if (corrupt) this.corrupted.push(index);
      const [hr, spo2, rr, sys, dia, mean, temp] = this.#numerics() as IntelliVueSimNumeric[] & { length: 7 };
      const single = (handle: number, v: IntelliVueSimNumeric) => [
        ...u16(handle),
        ...list([ava(0x0950, nuObs(v))]),
      ];
      const nibp = [...u16(40), ...list([ava(0x094b, list([nuObs(sys), nuObs(dia), nuObs(mean)]))])];
      objects = [single(10, hr), single(11, spo2), single(12, rr), nibp, single(13, temp)];
    } else if (objectType === 54) {
      const entry = (a: IntelliVueSimAlert) => {
        const text = Buffer.from(`${a.text}\0`, 'utf16le').swap16();
        const info = [...u16(1), ...u32(0), ...u16(0), ...u16(0), ...u16(text.length), ...text];
        return [
          ...u16(a.source),
          ...u16(a.code),
          ...u16(a.type),
          ...u16(0),
          ...u16(6),
          ...u16(0),
          ...u16(1),
          ...u16(0x0908),
          ...u16(info.length),
          ...info,
        ];
      };
      const physio = this.alerts.filter((a) => !a.technical).map(entry);
      const technical = this.alerts.filter((a) => a.technical).map(entry);
      objects = [[...u16(1), ...list([ava(0x0902, list(physio)), ava(0x0904, list(technical))])]];
    }
    const parts =
      this.#options.linked && objects.length > 1 ? [objects.slice(0, 2), objects.slice(2)] : [objects];
    parts.forEach((part, i) => {
      const reply = [
        ...u16(pollNumber),
        ...u16(0),
        ...u32(0),
        ...new Array(8).fill(0),
        ...u16(1),
        ...u16(objectType),
        ...u16(0),
        ...list([[...u16(0), ...list(part)]]),
      ];
      const body = [...u16(33), ...u16(0), ...u16(0), ...u16(0xf13b), ...u16(reply.length), ...reply];
      const linked = parts.length > 1 ? (i === parts.length - 1 ? 3 : 1) : undefined;
      this.#options.onReply?.(objectType);
      this.#reply(dataPdu(linked === undefined ? 2 : 5, invokeId, 7, body, linked), corrupt);
    });
    if (objectType === 6 && this.sentNumerics.length >= this.numericsLimit) this.faults.silent = true;
  }

  /** Sends a reply unless silent or dropped; true when sent. */
  #reply(pdu: Buffer, corrupt = false): boolean {
    if (this.faults.silent) return false;
    if (this.faults.drop > 0) {
      this.faults.drop--;
      return false;
    }
    this.#send(pdu, corrupt);
    return true;
  }

  #send(pdu: Buffer, corrupt = false): void {
    const fault = this.faults.corrupt > 0;
    if (fault) this.faults.corrupt--;
    this.#write(frame(pdu, corrupt || fault));
  }
}
