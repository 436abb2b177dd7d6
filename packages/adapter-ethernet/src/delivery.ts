import type { DeviceReading, Logger, ReadingSink } from '@attache/core';
import { isGatewayError, monotonicMs } from '@attache/core';

/** The reading minus what the delivery adds (device, adapter, arrival times). */
export type ReadingParts = Omit<DeviceReading, 'deviceId' | 'adapter' | 'receivedAt' | 'monotonicMs'>;

/** How one sink call ended. `malformed`: the sink rejected `ATTACHE_MALFORMED`; `refused`: any other error. */
export type DeliveryOutcome = 'stored' | 'malformed' | 'refused';

/** Counters of one adapter, shared by its connections. */
export interface DeliveryCounts {
  frames: number;
  stored: number;
  malformed: number;
  refused: number;
  junkBytes: number;
}

/** Junk is logged at most once per this many ms: a flood must not fill the journal (`junkBytes` counts it all). */
const junkLogEveryMs = 10_000;

/** When a message arrived. */
export interface Arrival {
  receivedAt: number;
  monotonicMs: number;
}

/** Stamps the current time as an arrival. */
export function arrivedNow(): Arrival {
  return { receivedAt: Date.now(), monotonicMs: monotonicMs() };
}

/**
 * Calls the sink for the readings of one adapter and keeps its counters and last error. Logs carry
 * reasons, lengths and counts, never content (it may be patient data).
 */
export class ReadingDelivery {
  readonly counts: DeliveryCounts = { frames: 0, stored: 0, malformed: 0, refused: 0, junkBytes: 0 };
  lastError: { code: string; message: string } | undefined;
  readonly #deviceId: string;
  readonly #sink: ReadingSink;
  readonly #log: Logger;
  readonly #now: () => number;
  #junkLoggedAt = Number.NEGATIVE_INFINITY;
  /** Junk bytes since the last junk log line. */
  #junkSince = 0;

  /** `now`: a monotonic clock in ms, for the junk log's rate limit (default CLOCK_MONOTONIC). */
  constructor(deviceId: string, sink: ReadingSink, log: Logger, now: () => number = monotonicMs) {
    this.#deviceId = deviceId;
    this.#sink = sink;
    this.#log = log;
    this.#now = now;
  }

  /**
   * Counts a frame and calls the sink synchronously (so calls keep the caller's order); resolves
   * with the outcome, never rejects.
   */
  async deliver(parts: ReadingParts, arrival: Arrival): Promise<DeliveryOutcome> {
    this.counts.frames++;
    const reading: DeviceReading = { deviceId: this.#deviceId, adapter: 'ethernet', ...arrival, ...parts };
    try {
      await this.#sink(reading);
      this.counts.stored++;
      return 'stored';
    } catch (err) {
      if (isGatewayError(err, 'ATTACHE_MALFORMED')) {
        this.malformed(err.message, reading.raw.length, false);
        return 'malformed';
      }
      this.refused(err);
      return 'refused';
    }
  }

  /** A frame that was not stored because it is malformed; `frame` false when already counted. */
  malformed(reason: string, bytes: number, frame = true): void {
    if (frame) this.counts.frames++;
    this.counts.malformed++;
    this.lastError = { code: 'ATTACHE_MALFORMED', message: reason };
    this.#log.warn({ reason, bytes, malformed: this.counts.malformed }, 'malformed message discarded');
  }

  /** A frame refused (unsupported, or the sink could not store it): the device keeps it. */
  refused(err: unknown, frame = false): void {
    if (frame) this.counts.frames++;
    this.counts.refused++;
    this.lastError = {
      code: isGatewayError(err) ? err.code : 'ERROR',
      message: err instanceof Error ? err.message : String(err),
    };
    this.#log.warn({ err, refused: this.counts.refused }, 'message refused');
  }

  /** Bytes outside any frame: counted; logged with the bytes since the last line, at most every 10 s. */
  junk(bytes: number): void {
    this.counts.junkBytes += bytes;
    this.#junkSince += bytes;
    const now = this.#now();
    if (now - this.#junkLoggedAt < junkLogEveryMs) return;
    this.#log.warn(
      { bytes: this.#junkSince, junkBytes: this.counts.junkBytes },
      'junk bytes outside a frame discarded',
    );
    this.#junkLoggedAt = now;
    this.#junkSince = 0;
  }
}
