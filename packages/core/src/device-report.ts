import { isGatewayError } from './errors.js';
import type { Logger } from './logger.js';
import type { Clock, SessionCounts, SessionReport } from './session.js';

/** Junk is logged at most once per this many ms: a flood must not fill the journal (`junkBytes` counts it all). */
const junkLogEveryMs = 10_000;

/** The adapter's side of a polled device's presence: answering or not while its link stays open. */
export type Presence = (answering: boolean) => void;

/** The last error an adapter saw: a documented `ATTACHE_*` code and a message without device content. */
export interface LastError {
  code: string;
  message: string;
}

/**
 * The {@link SessionReport} every adapter hands its sessions: one set of counters per device, the
 * last error (always a documented code: an error without one is `ATTACHE_INTERNAL`), and junk bytes
 * logged at most every 10 s. A polled device's unanswered requests are counted (`unanswered`, absent
 * until the first) and its silence or return is handed to the adapter's `presence`. Logs carry reasons, lengths and counts, never content (it may carry
 * patient data).
 */
export class DeviceReport implements SessionReport {
  readonly counts: SessionCounts & { unanswered?: number } = {
    frames: 0,
    stored: 0,
    malformed: 0,
    refused: 0,
  };
  /** Bytes received outside any protocol unit, discarded. */
  junkBytes = 0;
  lastError: LastError | undefined;
  readonly log: Logger;
  readonly #clock: Pick<Clock, 'monotonicMs'>;
  readonly #presence: Presence;
  #junkLoggedAt = Number.NEGATIVE_INFINITY;
  #junkSince = 0;

  /** `presence` is told when a polled device stops answering or answers again (default: nobody). */
  constructor(log: Logger, clock: Pick<Clock, 'monotonicMs'>, presence: Presence = () => undefined) {
    this.log = log;
    this.#clock = clock;
    this.#presence = presence;
  }

  frame(): void {
    this.counts.frames++;
  }

  stored(n = 1): void {
    this.counts.stored += n;
  }

  malformed(err: unknown, bytes: number | undefined, what = 'malformed frame discarded'): void {
    this.counts.malformed++;
    const reason = err instanceof Error ? err.message : String(err);
    this.lastError = { code: 'ATTACHE_MALFORMED', message: reason };
    this.log.warn({ reason, bytes, malformed: this.counts.malformed }, what);
  }

  refused(err: unknown, n = 1): void {
    this.counts.refused += n;
    this.error(err);
    this.log.warn({ err, refused: this.counts.refused }, 'reading refused by the sink');
  }

  /** Records `err` as the last error (a transport's failure to open, for instance). */
  error(err: unknown): void {
    this.lastError = {
      code: isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL',
      message: err instanceof Error ? err.message : String(err),
    };
  }

  junk(bytes: number): void {
    this.junkBytes += bytes;
    this.#junkSince += bytes;
    const now = this.#clock.monotonicMs();
    if (now - this.#junkLoggedAt < junkLogEveryMs) return;
    this.log.warn(
      { bytes: this.#junkSince, junkBytes: this.junkBytes },
      'junk bytes outside a frame discarded',
    );
    this.#junkLoggedAt = now;
    this.#junkSince = 0;
  }

  unanswered(what: string): void {
    this.counts.unanswered = (this.counts.unanswered ?? 0) + 1;
    this.log.debug({ request: what, unanswered: this.counts.unanswered }, 'request unanswered');
  }

  answering(answering: boolean, err?: unknown): void {
    if (!answering) {
      const message = err instanceof Error ? err.message : 'device not answering';
      this.lastError = { code: isGatewayError(err) ? err.code : 'ATTACHE_TIMEOUT', message };
    }
    this.#presence(answering);
  }
}
