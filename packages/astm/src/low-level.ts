import { monotonicMs } from '@attache/core';
import { ACK, astmChecksum, ENQ, EOT, ETB, ETX, NAK, STX } from './control.js';
import { MessageRecords } from './message-records.js';

/**
 * The receiver side of ASTM E1381 / CLSI LIS1-A (ASTM E1381) as a byte-driven state
 * machine: no I/O, no real timers.
 *
 * Contention: the gateway only receives, so it never sends ENQ. If it ever does (to send orders),
 * the instrument has priority: on an ENQ from the instrument while waiting for the answer to its
 * own ENQ, the gateway drops its request, answers the instrument's ENQ, and waits at least 20 s
 * before its next ENQ.
 */

/** What the caller must do or may want to know, in order. */
export type AstmAction =
  /** Write these bytes to the instrument (ACK or NAK). */
  | { type: 'send'; bytes: Buffer }
  /**
   * A message: the text of its frames joined, `records` split on CR (empty ones dropped).
   * `awaitingStore`: the final frame is held unacknowledged until `acknowledge()`; false when the
   * transfer ended (EOT) without an L record, the frames having been ACKed already.
   */
  | { type: 'message'; text: string; records: string[]; awaitingStore: boolean }
  /** Something happened; `reason` (malformed frames only) never contains the frame's content. */
  | { type: 'event'; event: AstmReceiverEvent; reason?: string };

/** Events reported by `AstmReceiver`. */
export type AstmReceiverEvent =
  | 'transfer-start'
  | 'transfer-end'
  | 'busy'
  | 'malformed-frame'
  | 'duplicate-frame'
  | 'timeout'
  /**
   * EOT right after a refused frame: the analyzer gave up on the message (E1381 has it abort after
   * six refusals) and sends it again later from its start. The frames ACKed before were discarded,
   * not reported: storing them would store its first part twice.
   */
  | 'aborted-message';

/** State of an `AstmReceiver`. */
export type AstmReceiverState = 'idle' | 'transfer' | 'awaiting-store';

export interface AstmReceiverOptions {
  /** Receiver timer in ms: a transfer silent this long is abandoned (E1381: 30 s). Default 30 000. */
  receiverTimeoutMs?: number;
  /** Longest frame text accepted, in characters (the standard says 240). Default 1024. */
  maxFrameText?: number;
  /**
   * Longest message text (all frames of one message joined), in characters. A frame that would
   * exceed it is NAKed (`malformed-frame`, reason `message too long`), the partial message is
   * discarded and every further frame of the transfer is NAKed until EOT or ENQ. Default 1 048 576.
   */
  maxMessageText?: number;
  /** Called on each ENQ: false answers NAK ("busy", the gateway cannot store). Default always true. */
  canAccept?: () => boolean;
  /** Clock in ms used when a method gets no `nowMs`. Default core's `monotonicMs`. */
  now?: () => number;
}

type FramePhase = 'none' | 'text' | 'c1' | 'c2';

const ACK_BYTES = Buffer.from([ACK]);
const NAK_BYTES = Buffer.from([NAK]);
/** Control characters that must not appear in a frame's text (E1381 §6.6; CR and LF tolerated). */
const RESTRICTED = new Set([0x01, ENQ, ACK, 0x10, NAK, 0x16, 0x11, 0x12, 0x13, 0x14]);

/** Bytes that end or break a frame's text (`#byte` handles them); any other byte is text. */
const frameControl = new Uint8Array(256);
for (const byte of [ENQ, STX, ETX, ETB, EOT]) frameControl[byte] = 1;

/** The index of the first frame control byte in `bytes` from `from`, or its length. */
function textEnd(bytes: Buffer, from: number): number {
  let i = from;
  while (i < bytes.length && frameControl[bytes[i] as number] === 0) i++;
  return i;
}

/** A received frame, parsed up to its checksum. */
interface Frame {
  fn: number;
  text: string;
  final: boolean;
}

/** ASTM E1381 receiver. Feed it bytes; write back the bytes of its `send` actions. */
export class AstmReceiver {
  readonly #timeoutMs: number;
  readonly #maxFrameText: number;
  readonly #maxMessageText: number;
  readonly #canAccept: () => boolean;
  readonly #now: () => number;
  #state: AstmReceiverState = 'idle';
  #expectedFn = 1;
  /** The frames ACKed since the last complete message, split into records as they came. */
  #message = new MessageRecords();
  #phase: FramePhase = 'none';
  /** The frame being received (FN, text, ETX/ETB), in pieces; nothing kept past maxFrameText. */
  #frame: Buffer[] = [];
  #frameBytes = 0;
  #c1 = 0;
  #lastActivity = 0;
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  /** True once the transfer's message outgrew `maxMessageText`: its frames are refused until EOT. */
  #overflowed = false;
  /** True when the last frame was answered NAK (no frame has been ACKed since). */
  #lastRefused = false;

  /** @throws TypeError when an option is out of range. */
  constructor(options: AstmReceiverOptions = {}) {
    const { receiverTimeoutMs = 30_000, maxFrameText = 1024, maxMessageText = 1_048_576 } = options;
    if (!(receiverTimeoutMs > 0)) throw new TypeError('"receiverTimeoutMs" must be greater than 0');
    if (!Number.isInteger(maxFrameText) || maxFrameText < 1) {
      throw new TypeError('"maxFrameText" must be an integer ≥ 1');
    }
    this.#timeoutMs = receiverTimeoutMs;
    if (!Number.isInteger(maxMessageText) || maxMessageText < maxFrameText) {
      throw new TypeError('"maxMessageText" must be an integer ≥ maxFrameText');
    }
    this.#maxFrameText = maxFrameText;
    this.#maxMessageText = maxMessageText;
    this.#canAccept = options.canAccept ?? (() => true);
    this.#now = options.now ?? monotonicMs;
  }

  /** `idle` (waiting for ENQ), `transfer`, or `awaiting-store` (a message waits for `acknowledge()`). */
  get state(): AstmReceiverState {
    return this.#state;
  }

  /**
   * Processes bytes from the instrument. While awaiting the store they are queued, up to
   * `maxMessageText` bytes (an analyzer waits for the ACK: more is noise, dropped).
   */
  feed(bytes: Buffer, nowMs: number = this.#now()): AstmAction[] {
    const actions: AstmAction[] = [];
    let i = 0;
    while (i < bytes.length) {
      if (this.#state === 'awaiting-store') {
        this.#queue(bytes.subarray(i));
        break;
      }
      // Inside a frame's text, take the run up to the next control byte at once.
      const end = this.#phase === 'text' && this.#state !== 'idle' ? textEnd(bytes, i) : i;
      if (end > i) {
        this.#lastActivity = nowMs;
        this.#append(bytes.subarray(i, end));
        i = end;
      } else {
        this.#byte(bytes[i] as number, nowMs, actions);
        i++;
      }
    }
    return actions;
  }

  #queue(bytes: Buffer): void {
    const room = this.#maxMessageText - this.#queuedBytes;
    const kept = bytes.subarray(0, Math.max(0, room));
    if (kept.length === 0) return;
    // A view, not a copy: `acknowledge()` hands the rest of its queue back here after each message.
    this.#queued.push(kept);
    this.#queuedBytes += kept.length;
  }

  /**
   * Answers the held final frame of a message: `true` (stored durably) → ACK and the message is
   * committed; `false` → NAK, the analyzer keeps its data and re-sends the frame. Then processes
   * the bytes queued meanwhile.
   * @throws TypeError when no message is awaiting the store.
   */
  acknowledge(stored: boolean, nowMs: number = this.#now()): AstmAction[] {
    if (this.#state !== 'awaiting-store')
      throw new TypeError('"acknowledge" called with no message awaiting store');
    this.#state = 'transfer';
    this.#lastActivity = nowMs;
    const actions: AstmAction[] = [{ type: 'send', bytes: stored ? ACK_BYTES : NAK_BYTES }];
    this.#lastRefused = !stored;
    if (stored) {
      this.#message = new MessageRecords();
      this.#expectedFn = (this.#expectedFn + 1) % 8;
    }
    const queued = this.#queued.length === 1 ? (this.#queued[0] as Buffer) : Buffer.concat(this.#queued);
    this.#queued = [];
    this.#queuedBytes = 0;
    actions.push(...this.feed(queued, nowMs));
    return actions;
  }

  /** Applies the receiver timer: a transfer silent for `receiverTimeoutMs` is abandoned. */
  tick(nowMs: number = this.#now()): AstmAction[] {
    if (this.#state !== 'transfer' || nowMs - this.#lastActivity < this.#timeoutMs) return [];
    this.#reset();
    return [{ type: 'event', event: 'timeout' }];
  }

  #reset(): void {
    this.#state = 'idle';
    this.#message = new MessageRecords();
    this.#phase = 'none';
    this.#clearFrame();
    this.#overflowed = false;
    this.#lastRefused = false;
  }

  #byte(byte: number, nowMs: number, actions: AstmAction[]): void {
    this.#lastActivity = nowMs;
    if (byte === ENQ && this.#phase !== 'c1' && this.#phase !== 'c2') {
      this.#establish(actions);
      return;
    }
    if (this.#state === 'idle') return;
    if (this.#phase === 'none') this.#between(byte, actions);
    else if (this.#phase === 'text') this.#text(byte, actions);
    else if (this.#phase === 'c1') {
      this.#c1 = byte;
      this.#phase = 'c2';
    } else {
      this.#phase = 'none';
      this.#complete(byte, actions);
    }
  }

  #establish(actions: AstmAction[]): void {
    this.#reset();
    if (!this.#canAccept()) {
      actions.push({ type: 'send', bytes: NAK_BYTES }, { type: 'event', event: 'busy' });
      return;
    }
    this.#state = 'transfer';
    this.#expectedFn = 1;
    actions.push({ type: 'send', bytes: ACK_BYTES }, { type: 'event', event: 'transfer-start' });
  }

  /** Between frames: STX starts one, EOT ends the transfer, CR/LF and noise are skipped. */
  #between(byte: number, actions: AstmAction[]): void {
    if (byte === STX) {
      this.#phase = 'text';
      this.#clearFrame();
    } else if (byte === EOT) {
      this.#endTransfer(actions);
    }
  }

  #endTransfer(actions: AstmAction[]): void {
    const { text, records } = this.#message.contents();
    const aborted = this.#lastRefused;
    this.#reset();
    if (records.length > 0 && aborted) actions.push({ type: 'event', event: 'aborted-message' });
    else if (records.length > 0) actions.push({ type: 'message', text, records, awaitingStore: false });
    actions.push({ type: 'event', event: 'transfer-end' });
  }

  #text(byte: number, actions: AstmAction[]): void {
    if (byte === ETX || byte === ETB) {
      this.#append(Buffer.from([byte]));
      this.#phase = 'c1';
    } else if (byte === EOT) {
      this.#phase = 'none';
      actions.push({ type: 'event', event: 'malformed-frame', reason: 'EOT inside a frame' });
      this.#endTransfer(actions);
    } else if (byte === STX) {
      this.#clearFrame();
      actions.push({ type: 'event', event: 'malformed-frame', reason: 'STX inside a frame' });
    } else {
      this.#append(Buffer.from([byte]));
    }
  }

  #append(bytes: Buffer): void {
    // FN + text + ETX: a longer frame is refused at its end; its text is not kept meanwhile.
    if (this.#frameBytes + bytes.length <= this.#maxFrameText + 2) this.#frame.push(Buffer.from(bytes));
    this.#frameBytes += bytes.length;
  }

  #clearFrame(): void {
    this.#frame = [];
    this.#frameBytes = 0;
  }

  /** C2 arrived: check the frame and answer at once (a missing CR/LF trailer is tolerated). */
  #complete(c2: number, actions: AstmAction[]): void {
    const tooLong = this.#frameBytes - 2 > this.#maxFrameText;
    const bytes = Buffer.concat(this.#frame);
    this.#clearFrame();
    const problem = tooLong ? 'frame text too long' : this.#problem(bytes, c2);
    const fn = bytes[0];
    // Refused until a branch below ACKs it.
    this.#lastRefused = true;
    if (problem !== undefined || fn === undefined) {
      actions.push(
        { type: 'send', bytes: NAK_BYTES },
        { type: 'event', event: 'malformed-frame', reason: problem },
      );
      return;
    }
    const frame: Frame = {
      fn: fn - 0x30,
      text: bytes.subarray(1, -1).toString('latin1'),
      final: bytes.at(-1) === ETX,
    };
    if (frame.fn === (this.#expectedFn + 7) % 8) {
      this.#lastRefused = false;
      actions.push({ type: 'send', bytes: ACK_BYTES }, { type: 'event', event: 'duplicate-frame' });
    } else if (frame.fn !== this.#expectedFn) {
      actions.push(
        { type: 'send', bytes: NAK_BYTES },
        { type: 'event', event: 'malformed-frame', reason: 'unexpected frame number' },
      );
    } else {
      this.#accept(frame, actions);
    }
  }

  /** Why a frame (FN…ETB/ETX) with checksum `#c1 c2` is refused, or undefined when it is sound. */
  #problem(bytes: Buffer, c2: number): string | undefined {
    const fn = bytes[0];
    if (bytes.length < 2 || fn === undefined || fn < 0x30 || fn > 0x37) return 'frame number is not 0-7';
    if (bytes.subarray(1, -1).some((b) => RESTRICTED.has(b))) return 'restricted character in frame text';
    const sent = String.fromCharCode(this.#c1, c2).toUpperCase();
    if (sent !== astmChecksum(bytes)) return 'checksum mismatch';
    return undefined;
  }

  #accept(frame: Frame, actions: AstmAction[]): void {
    if (this.#overflowed || this.#message.length + frame.text.length > this.#maxMessageText) {
      this.#overflowed = true;
      this.#message = new MessageRecords();
      actions.push(
        { type: 'send', bytes: NAK_BYTES },
        { type: 'event', event: 'malformed-frame', reason: 'message too long' },
      );
      return;
    }
    if (frame.final && this.#message.endsWithTerminatorAfter(frame.text)) {
      // Not added: a NAK (not stored) has the analyzer send this frame again.
      this.#state = 'awaiting-store';
      actions.push({ type: 'message', ...this.#message.contents(frame.text), awaitingStore: true });
      return;
    }
    this.#message.add(frame.text);
    this.#expectedFn = (this.#expectedFn + 1) % 8;
    this.#lastRefused = false;
    actions.push({ type: 'send', bytes: ACK_BYTES });
  }
}
