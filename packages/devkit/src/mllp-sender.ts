import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { GatewayError } from '@attache/core';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

/** Options of {@link MllpSenderSimulator}. */
export interface MllpSenderOptions {
  host?: string;
  port: number;
  /** How long to wait for each ACK, ms. Default 10 000. */
  ackTimeoutMs?: number;
  /** Re-send a message whose connection broke before its ACK (reconnecting first). Default true. */
  resend?: boolean;
  /** Delay before reconnecting, ms (doubles up to 2 s). Default 100. */
  reconnectMs?: number;
  /** Most attempts per message before `send` rejects. Default 50. */
  maxAttempts?: number;
  /** Write each frame in pieces of this many bytes (split frames). Default: in one write. */
  chunkBytes?: number;
  /** Pause between pieces, ms (a slow sender). Default 0. */
  chunkDelayMs?: number;
}

/** The acknowledgment a message got. */
export interface MllpAck {
  /** MSA-1: AA, AE, AR (or CA/CE/CR). */
  code: string;
  /** MSA-2: the control id acknowledged. */
  controlId: string;
  /** The ACK's text, segments separated by CR. */
  text: string;
  /** Connections used for this message (1 unless it was re-sent). */
  attempts: number;
}

interface SenderEvents {
  /** A frame was completely written (synchronously after the last write). */
  sent: [controlId: string];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** MSA-1 and MSA-2 of an ACK's text. */
export function parseMllpAck(text: string): { code: string; controlId: string } {
  const msa = text.split(/\r|\n/).find((s) => s.startsWith('MSA'));
  const field = text[text.indexOf('MSH') + 3] ?? '|';
  const parts = msa?.split(field) ?? [];
  return { code: parts[1] ?? '', controlId: parts[2] ?? '' };
}

/**
 * An HL7 sender over MLLP for tests: sends one message at a time and waits for its ACK, like a
 * monitor; re-sends after a broken connection; can split frames and send slowly; writes raw bytes.
 * Rejects with GatewayError `ATTACHE_TIMEOUT` when no ACK arrives within `ackTimeoutMs`, and
 * `ATTACHE_PORT_NOT_OPEN` after `maxAttempts` broken attempts.
 */
export class MllpSenderSimulator extends EventEmitter<SenderEvents> {
  readonly #o: Required<Omit<MllpSenderOptions, 'chunkBytes'>> & { chunkBytes: number | undefined };
  #socket: Socket | undefined;
  #buffer = Buffer.alloc(0);
  #waiters: ((ack: string | null) => void)[] = [];
  #acks: string[] = [];
  /** Messages re-sent after a broken connection. */
  resent = 0;

  constructor(options: MllpSenderOptions) {
    super();
    this.#o = {
      host: options.host ?? '127.0.0.1',
      port: options.port,
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      resend: options.resend ?? true,
      reconnectMs: options.reconnectMs ?? 100,
      maxAttempts: options.maxAttempts ?? 50,
      chunkBytes: options.chunkBytes,
      chunkDelayMs: options.chunkDelayMs ?? 0,
    };
  }

  /** Connects (again). Rejects with the socket error. */
  connect(): Promise<void> {
    const socket = connect({ host: this.#o.host, port: this.#o.port });
    socket.setNoDelay(true);
    this.#buffer = Buffer.alloc(0);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => this.#data(chunk));
        socket.once('close', () => this.#closed(socket));
        this.#socket = socket;
        resolve();
      });
    });
  }

  /** True while connected. */
  get connected(): boolean {
    return this.#socket !== undefined && !this.#socket.destroyed;
  }

  /** Sends `message` (segments separated by CR) in an MLLP frame; resolves with its ACK. */
  async send(message: string): Promise<MllpAck> {
    const controlId = message.split('\r', 1)[0]?.split(message[3] ?? '|')[9] ?? '';
    let delay = this.#o.reconnectMs;
    let written = false;
    for (let attempt = 1; attempt <= this.#o.maxAttempts; attempt++) {
      try {
        if (!this.connected) await this.connect();
        this.#acks = [];
        if (written) this.resent++;
        written = true;
        await this.sendRaw(
          Buffer.concat([Buffer.from([VT]), Buffer.from(message, 'utf8'), Buffer.from([FS, CR])]),
        );
        this.emit('sent', controlId);
        const text = await this.nextAck();
        return { ...parseMllpAck(text), text, attempts: attempt };
      } catch (err) {
        if (!this.#o.resend || (err instanceof GatewayError && err.code === 'ATTACHE_TIMEOUT')) throw err;
        await sleep(delay);
        delay = Math.min(delay * 2, 2000);
      }
    }
    throw new GatewayError(
      'ATTACHE_PORT_NOT_OPEN',
      `no ACK for ${controlId} after ${this.#o.maxAttempts} attempts`,
    );
  }

  /** Writes bytes as they are (junk, partial frames), in pieces if `chunkBytes` is set. */
  async sendRaw(bytes: Buffer): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed)
      throw new GatewayError('ATTACHE_PORT_NOT_OPEN', 'not connected');
    const size = this.#o.chunkBytes ?? bytes.length;
    for (let i = 0; i < bytes.length; i += size) {
      if (i > 0 && this.#o.chunkDelayMs > 0) await sleep(this.#o.chunkDelayMs);
      if (socket.destroyed) throw new GatewayError('ATTACHE_PORT_NOT_OPEN', 'connection closed');
      socket.write(bytes.subarray(i, i + size));
    }
  }

  /**
   * Resolves with the next ACK's text. Rejects `ATTACHE_PORT_NOT_OPEN` when the connection closes
   * first, `ATTACHE_TIMEOUT` after `ackTimeoutMs`.
   */
  nextAck(): Promise<string> {
    const queued = this.#acks.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new GatewayError('ATTACHE_TIMEOUT', `no ACK within ${this.#o.ackTimeoutMs} ms`));
      }, this.#o.ackTimeoutMs);
      const waiter = (ack: string | null) => {
        clearTimeout(timer);
        if (ack === null)
          reject(new GatewayError('ATTACHE_PORT_NOT_OPEN', 'connection closed before the ACK'));
        else resolve(ack);
      };
      this.#waiters.push(waiter);
    });
  }

  /** Closes the connection (no re-send). */
  async close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  #data(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const start = this.#buffer.indexOf(VT);
      const end = this.#buffer.indexOf(FS, start + 1);
      if (start === -1 || end === -1) return;
      const text = this.#buffer.subarray(start + 1, end).toString('utf8');
      this.#buffer = this.#buffer.subarray(end + 1);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(text);
      else this.#acks.push(text);
    }
  }

  #closed(socket: Socket): void {
    if (this.#socket === socket) this.#socket = undefined;
    for (const waiter of this.#waiters.splice(0)) waiter(null);
  }
}

/** One OBX of {@link oruR01Message}: `OBX|n|type|code||value|unit|||||status`. */
export interface OruObservation {
  /** OBX-2, e.g. `NM`; empty for a containment header. */
  type: string;
  /** OBX-3, e.g. `150456^MDC_PULS_OXIM_SAT_O2^MDC`. */
  code: string;
  /** OBX-4 containment path, e.g. `1.1.1.1`. */
  path: string;
  value?: string;
  /** OBX-6, e.g. `262688^MDC_DIM_PERCENT^MDC`. */
  unit?: string;
  /** OBX-11. Default `R` (`X` for headers). */
  status?: string;
}

/** Values of {@link pcd01VitalSigns}. */
export interface VitalSignValues {
  systolic: number;
  diastolic: number;
  mean: number;
  spo2: number;
  pulse: number;
}

/**
 * The OBX segments of a PCD-01 vital-signs message as monitors send them: the MDS and NIBP VMD
 * containment headers (no value), an NIBP systolic/diastolic/mean, SpO2 and pulse rate, with MDC codes
 * and MDC unit codes (IHE PCD TF-2, PCD-01; ISO/IEEE 11073-10101).
 */
export function pcd01VitalSigns(v: VitalSignValues): OruObservation[] {
  const mmHg = '266016^MDC_DIM_MMHG^MDC';
  return [
    { type: '', code: '69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC', path: '1.0.0.0' },
    { type: '', code: '69854^MDC_DEV_METER_PRESS_BLD_VMD^MDC', path: '1.1.0.0' },
    {
      type: 'NM',
      code: '150021^MDC_PRESS_BLD_NONINV_SYS^MDC',
      path: '1.1.1.1',
      value: String(v.systolic),
      unit: mmHg,
    },
    {
      type: 'NM',
      code: '150022^MDC_PRESS_BLD_NONINV_DIA^MDC',
      path: '1.1.1.2',
      value: String(v.diastolic),
      unit: mmHg,
    },
    {
      type: 'NM',
      code: '150023^MDC_PRESS_BLD_NONINV_MEAN^MDC',
      path: '1.1.1.3',
      value: String(v.mean),
      unit: mmHg,
    },
    {
      type: 'NM',
      code: '150456^MDC_PULS_OXIM_SAT_O2^MDC',
      path: '1.2.1.1',
      value: String(v.spo2),
      unit: '262688^MDC_DIM_PERCENT^MDC',
    },
    {
      type: 'NM',
      code: '149530^MDC_PULS_OXIM_PULS_RATE^MDC',
      path: '1.2.1.2',
      value: String(v.pulse),
      unit: '264864^MDC_DIM_BEAT_PER_MIN^MDC',
    },
  ];
}

/** Options of {@link oruR01Message}. */
export interface OruR01Options {
  controlId: string;
  /** MSH-3, e.g. `VSP^080019FFFE134535^EUI-64`. */
  sendingApplication?: string;
  /** PID-3 and PID-5; omit for no PID. */
  patient?: { mrn: string; name: string; birthDate?: string };
  observations: OruObservation[];
  /** MSH-7 / OBR-7, `YYYYMMDDHHMMSS`. */
  timestamp?: string;
  /** MSH-12. Default `2.6`. */
  version?: string;
}

/**
 * An IHE PCD-01 ORU^R01 as a monitor sends it (IHE PCD TF-2, PCD-01): MSH, PID, PV1, OBR, OBX…,
 * segments separated by CR (no trailing CR).
 */
export function oruR01Message(options: OruR01Options): string {
  const ts = options.timestamp ?? '20260124120000';
  const app = options.sendingApplication ?? 'VSP^080019FFFE134535^EUI-64';
  const segments = [
    `MSH|^~\\&|${app}|ICU|ATTACHE|HOSP|${ts}||ORU^R01^ORU_R01|${options.controlId}|P|${options.version ?? '2.6'}|||NE|AL||8859/1|||PCD_DEC_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
  ];
  if (options.patient) {
    const { mrn, name, birthDate = '19500101' } = options.patient;
    segments.push(`PID|||${mrn}^^^HOSP^MR||${name}||${birthDate}|F`, 'PV1||I|ICU^BED7^1');
  }
  segments.push(
    `OBR|1|${options.controlId}^VSP|${options.controlId}^VSP|182777000^monitoring of patient^SCT|||${ts}`,
  );
  options.observations.forEach((o, i) => {
    const status = o.status ?? (o.type === '' ? 'X' : 'R');
    segments.push(
      `OBX|${i + 1}|${o.type}|${o.code}|${o.path}|${o.value ?? ''}|${o.unit ?? ''}|||||${status}|||${ts}`,
    );
  });
  return segments.join('\r');
}
