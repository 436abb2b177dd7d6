import { isGatewayError } from './errors.js';
import type { Logger } from './logger.js';
import type { Clock, SessionCounts, SessionReport } from './session.js';

/** Junk is logged at most once per this many ms: a flood must not fill the journal (`junkBytes` counts it all). */
const junkLogEveryMs = 10_000;

/** The last error an adapter saw: a documented `ATTACHE_*` code and a message without device content. */
export interface LastError {
  code: string;
  message: string;
}

/**
 * The {@link SessionReport} every adapter hands its sessions: one set of counters per device, the
 * last error (always a documented code: an error without one is `ATTACHE_INTERNAL`), and junk bytes
 * logged at most every 10 s. Logs carry reasons, lengths and counts, never content (it may carry
 * patient data).
 */
export class DeviceReport implements SessionReport {
  readonly counts: SessionCounts = { frames: 0, stored: 0, malformed: 0, refused: 0 };
  /** Bytes received outside any protocol unit, discarded. */
  junkBytes = 0;
  lastError: LastError | undefined;
  readonly log: Logger;
  readonly #clock: Pick<Clock, 'monotonicMs'>;
  #junkLoggedAt = Number.NEGATIVE_INFINITY;
  #junkSince = 0;

  constructor(log: Logger, clock: Pick<Clock, 'monotonicMs'>) {
    this.log = log;
    this.#clock = clock;
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
}
