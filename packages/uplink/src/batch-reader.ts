import type { Outbox } from '@attache/core';
import { GatewayError } from '@attache/core';

/** One batch message, ready to publish. */
export interface Batch {
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** The BatchMessage JSON, UTF-8. */
  payload: Buffer;
}

/** Options of {@link BatchReader}. */
export interface BatchReaderOptions {
  outbox: Outbox;
  gatewayId: string;
  /** Largest payload in bytes. */
  maxMessageBytes: number;
}

// The largest seq the record schema allows: the header is sized for it so that any batch fits.
const maxSeq = Number.MAX_SAFE_INTEGER;
const sentAtSample = '2000-01-01T00:00:00.000Z';
// Records per outbox read: far more than fit in 128 KB, so maxBytes is what limits a read.
const readLimit = 10_000;

function header(gatewayId: string, firstSeq: number, lastSeq: number, count: number, sentAt: string): string {
  return `{"schemaVersion":1,"gatewayId":${JSON.stringify(gatewayId)},"firstSeq":${firstSeq},"lastSeq":${lastSeq},"count":${count},"sentAt":"${sentAt}","records":[`;
}

/**
 * Reads the outbox in seq order and packs consecutive records into BatchMessage payloads of at
 * most `maxMessageBytes`, concatenating the stored JSON without parsing it. Each call to `next()`
 * continues after the last record handed out, whether or not that batch was acknowledged.
 */
export class BatchReader {
  readonly #outbox: Outbox;
  readonly #gatewayId: string;
  /** Bytes left for the records' JSON and the commas between them. */
  readonly #budget: number;
  #afterSeq = 0;

  constructor(options: BatchReaderOptions) {
    this.#outbox = options.outbox;
    this.#gatewayId = options.gatewayId;
    const overhead = Buffer.byteLength(
      `${header(options.gatewayId, maxSeq, maxSeq, maxSeq, sentAtSample)}]}`,
    );
    this.#budget = options.maxMessageBytes - overhead;
  }

  /**
   * The next batch, or null when the outbox holds nothing after the last record handed out.
   * Rejects with the outbox's error when reading fails, and with `ATTACHE_UPLINK_PUBLISH` when the
   * next record alone does not fit in `maxMessageBytes` (it stays in the outbox).
   */
  async next(): Promise<Batch | null> {
    const records = await this.#outbox.read({
      afterSeq: this.#afterSeq,
      limit: readLimit,
      maxBytes: this.#budget,
    });
    const parts: string[] = [];
    let used = -1;
    for (const record of records) {
      const size = Buffer.byteLength(record.json) + 1;
      if (used + size > this.#budget) break;
      parts.push(record.json);
      used += size;
    }
    const first = records[0];
    if (first === undefined) return null;
    if (parts.length === 0) {
      throw new GatewayError(
        'ATTACHE_UPLINK_PUBLISH',
        `record ${first.seq} alone is larger than maxMessageBytes allows (${this.#budget} bytes of records)`,
      );
    }
    const firstSeq = first.seq;
    const lastSeq = records[parts.length - 1]?.seq ?? firstSeq;
    const head = header(this.#gatewayId, firstSeq, lastSeq, parts.length, new Date().toISOString());
    this.#afterSeq = lastSeq;
    return {
      firstSeq,
      lastSeq,
      count: parts.length,
      payload: Buffer.from(`${head}${parts.join(',')}]}`),
    };
  }
}
