import type { AdapterStatus, Logger } from '@attache/core';
import { isGatewayError } from '@attache/core';

/** The counters of `AdapterStatus`, shared by the adapter and its format session. */
export type AdapterCounts = Pick<AdapterStatus, 'frames' | 'stored' | 'malformed' | 'refused' | 'unanswered'>;

/**
 * Counts what an adapter's session sees and logs it: reasons and lengths only, never the frame's
 * content (it may carry patient data).
 */
export class AdapterReport {
  readonly counts: AdapterCounts = { frames: 0, stored: 0, malformed: 0, refused: 0 };
  lastError: { code: string; message: string } | undefined;
  readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /** A frame (line, ASTM frame or message) was refused as malformed. `bytes`: its length. */
  malformed(err: unknown, bytes: number | undefined, what = 'malformed line discarded'): void {
    this.counts.malformed++;
    const reason = err instanceof Error ? err.message : String(err);
    this.lastError = { code: 'ATTACHE_MALFORMED', message: reason };
    this.log.warn({ reason, bytes, malformed: this.counts.malformed }, what);
  }

  /** The sink rejected a reading (`n` readings). */
  refused(err: unknown, n = 1): void {
    this.counts.refused += n;
    this.lastError = {
      code: isGatewayError(err) ? err.code : 'ERROR',
      message: err instanceof Error ? err.message : String(err),
    };
    this.log.warn({ err, refused: this.counts.refused }, 'reading refused by the sink');
  }
}
