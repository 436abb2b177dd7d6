import type { Logger } from '@attache/core';
import { frameAstmRecords } from './host-query.js';

const ENQ = 0x05;
const ACK = 0x06;
const NAK = 0x15;
const EOT = 0x04;

/** E1381 timers and limits (ASTM E1381). */
const answerTimeoutMs = 15_000;
const busyRetryMs = 10_000;
const contentionRetryMs = 20_000;
const maxRetries = 6;
/** Replies waiting to be sent; more are dropped (the instrument asks again). */
const maxPending = 8;

type Phase = 'idle' | 'enq' | 'frames';

/**
 * The gateway's side as E1381 *sender*, for its answers to host queries: ENQ, one ACK awaited per
 * frame, re-sends on NAK, EOT. The instrument wins contention: an ENQ from it while the gateway
 * waits for the answer to its own ENQ cancels the attempt (the bytes go to the receiver) and the
 * gateway waits 20 s before its next ENQ. A NAK to the ENQ (busy) waits 10 s. Six failures drop the
 * reply with a warning.
 */
export class AstmReplySender {
  readonly #write: (bytes: Buffer) => void;
  readonly #log: Logger;
  #pending: Buffer[][] = [];
  #phase: Phase = 'idle';
  #frame = 0;
  #failures = 0;
  #deadline = 0;
  #notBefore = 0;

  constructor(write: (bytes: Buffer) => void, log: Logger) {
    this.#write = write;
    this.#log = log;
  }

  /** True while the gateway holds the line (waiting for the instrument's answers). */
  get active(): boolean {
    return this.#phase !== 'idle';
  }

  /** Queues a reply (records without CR). */
  queue(records: string[]): void {
    if (this.#pending.length >= maxPending) {
      this.#log.warn({ pending: this.#pending.length }, 'too many ASTM replies waiting; reply dropped');
      return;
    }
    this.#pending.push(frameAstmRecords(records));
  }

  /** Starts a queued reply when one is due; call only while the receiver is idle. */
  maybeStart(nowMs: number): void {
    if (this.#phase !== 'idle' || this.#pending.length === 0 || nowMs < this.#notBefore) return;
    this.#phase = 'enq';
    this.#deadline = nowMs + answerTimeoutMs;
    this.#write(Buffer.from([ENQ]));
  }

  /** Handles bytes while active; returns the bytes that belong to the receiver (after contention). */
  onData(chunk: Buffer, nowMs: number): Buffer {
    for (let i = 0; i < chunk.length; i++) {
      // The reply ended mid-chunk (its last ACK, or a give-up): the rest is the instrument's.
      if (this.#phase === 'idle') return chunk.subarray(i);
      const byte = chunk[i] as number;
      if (this.#phase === 'enq') {
        if (byte === ENQ) {
          this.#retryLater(nowMs, contentionRetryMs, 'contention: the instrument sends first');
          return chunk.subarray(i);
        }
        if (byte === ACK) {
          this.#frame = -1;
          this.#sendFrame(0, nowMs);
        } else if (byte === NAK) this.#retryLater(nowMs, busyRetryMs, 'instrument busy');
      } else if (byte === ACK || byte === EOT) {
        this.#sendFrame(this.#frame + 1, nowMs);
      } else if (byte === NAK) {
        if (++this.#failures > maxRetries) this.#abort('frame refused seven times');
        else this.#sendFrame(this.#frame, nowMs);
      }
    }
    return Buffer.alloc(0);
  }

  /** Applies the 15 s answer timer. */
  tick(nowMs: number): void {
    if (this.#phase === 'idle' || nowMs < this.#deadline) return;
    if (this.#phase === 'frames') this.#abort('no answer to a frame');
    else {
      this.#write(Buffer.from([EOT]));
      this.#retryLater(nowMs, busyRetryMs, 'no answer to ENQ');
    }
  }

  #sendFrame(index: number, nowMs: number): void {
    const frames = this.#pending[0] ?? [];
    if (index !== this.#frame) this.#failures = 0;
    this.#frame = index;
    this.#phase = 'frames';
    this.#deadline = nowMs + answerTimeoutMs;
    const frame = frames[index];
    if (frame !== undefined) {
      this.#write(frame);
      return;
    }
    this.#write(Buffer.from([EOT]));
    this.#pending.shift();
    this.#phase = 'idle';
    this.#failures = 0;
    this.#log.info({ frames: frames.length }, 'ASTM host-query reply sent');
  }

  #retryLater(nowMs: number, delayMs: number, reason: string): void {
    this.#phase = 'idle';
    this.#notBefore = nowMs + delayMs;
    if (++this.#failures > maxRetries) {
      this.#pending.shift();
      this.#failures = 0;
      this.#log.warn({ reason }, 'ASTM host-query reply dropped after seven attempts');
    } else {
      this.#log.info({ reason, retryInMs: delayMs }, 'ASTM host-query reply postponed');
    }
  }

  #abort(reason: string): void {
    this.#write(Buffer.from([EOT]));
    this.#pending.shift();
    this.#phase = 'idle';
    this.#failures = 0;
    this.#log.warn({ reason }, 'ASTM host-query reply aborted');
  }
}
