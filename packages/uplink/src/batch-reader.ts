import { gzipSync } from 'node:zlib';
import type { Outbox, PageRoom, RecordPage, StoredRecord } from '@attache/core';
import { GatewayError } from '@attache/core';

/** One batch message, ready to publish. */
export interface Batch {
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** The BatchMessage (or CompressedBatchMessage) JSON, UTF-8. */
  payload: Buffer;
  /** The MQTT 5 content type of `payload`. */
  contentType: string;
  /**
   * Set when `payload` lies in a buffer the outbox reuses (its page's): called once the payload was
   * handed to the MQTT client, which copies it; `payload` must not be read after that.
   */
  release?: () => void;
}

/** Options of {@link BatchReader}. */
export interface BatchReaderOptions {
  outbox: Outbox;
  gatewayId: string;
  /** Largest payload in bytes. */
  maxMessageBytes: number;
  /** `gzip`: records compressed in `recordsGzip` (compressed-batch.schema.json). Default `none`. */
  compression?: 'none' | 'gzip';
}

/** Content types: plain batches are JSON a dashboard reads as is; compressed ones say so. */
export const contentTypes = {
  none: 'application/json',
  gzip: 'application/vnd.attache.batch+json; records=gzip',
} as const;

// The largest seq the record schema allows: the header is sized for it so that any batch fits.
const maxSeq = Number.MAX_SAFE_INTEGER;
const sentAtSample = '2000-01-01T00:00:00.000Z';
// Records per outbox read: more than fit in 128 KB even compressed 20:1.
const readLimit = 20_000;
// Aim compressed batches a little under the limit: the ratio varies from batch to batch.
const gzipMargin = 0.92;
/** The end of a plain batch after its records. */
const closing = ']}';

function header(gatewayId: string, firstSeq: number, lastSeq: number, count: number, sentAt: string): string {
  return `{"schemaVersion":1,"gatewayId":${JSON.stringify(gatewayId)},"firstSeq":${firstSeq},"lastSeq":${lastSeq},"count":${count},"sentAt":"${sentAt}",`;
}

/**
 * Reads the outbox in seq order and packs consecutive records into batch payloads of at most
 * `maxMessageBytes`, concatenating the stored JSON without parsing it (plain batches from an outbox
 * with `readPage`: its page's bytes as they are). Each call to `next()`
 * continues after the last record handed out, whether or not that batch was acknowledged.
 */
export class BatchReader {
  readonly #outbox: Outbox;
  readonly #gatewayId: string;
  readonly #compression: 'none' | 'gzip';
  /** Bytes left for the records' field (JSON array or base64 gzip) and its punctuation. */
  readonly #budget: number;
  /** gzip: raw JSON bytes to read for one batch, adapted to the ratio seen so far. */
  #rawTarget: number;
  #afterSeq = 0;
  /** The page after `#afterSeq`, read ahead (plain batches from an outbox with `readPage`). */
  #ahead: Promise<RecordPage | null> | undefined;
  /** Room asked for around a page's JSON: the longest header, and the closing brackets. */
  readonly #room: PageRoom;

  constructor(options: BatchReaderOptions) {
    this.#outbox = options.outbox;
    this.#gatewayId = options.gatewayId;
    this.#compression = options.compression ?? 'none';
    const longestTail = '"encoding":"gzip","recordsGzip":""}';
    const overhead = Buffer.byteLength(
      header(options.gatewayId, maxSeq, maxSeq, maxSeq, sentAtSample) + longestTail,
    );
    this.#budget = options.maxMessageBytes - overhead;
    this.#rawTarget = this.#budget * 4;
    const before = Buffer.byteLength(
      `${header(options.gatewayId, maxSeq, maxSeq, maxSeq, sentAtSample)}"records":[`,
    );
    this.#room = { before, after: closing.length };
  }

  /**
   * The next batch, or null when the outbox holds nothing after the last record handed out.
   * Rejects with the outbox's error when reading fails, and with `ATTACHE_UPLINK_PUBLISH` when the
   * next record alone does not fit in `maxMessageBytes` (it stays in the outbox).
   */
  async next(): Promise<Batch | null> {
    const gzip = this.#compression === 'gzip';
    if (!gzip && this.#outbox.readPage) return this.#pageBatch(this.#outbox.readPage);
    const records = await this.#outbox.read({
      afterSeq: this.#afterSeq,
      limit: readLimit,
      maxBytes: gzip ? Math.floor(this.#rawTarget) : this.#budget,
    });
    const first = records[0];
    if (first === undefined) return null;
    const batch = gzip ? this.#gzipBatch(records) : this.#plainBatch(records);
    if (batch === null) throw this.#tooLarge(first.seq);
    this.#afterSeq = batch.lastSeq;
    return batch;
  }

  /**
   * A plain batch from one page of the outbox: its bytes are placed in the payload as they are, no
   * record handled one by one. The page is read to fit the budget with the array's brackets, and
   * with room before and after its JSON, where the header and the closing brackets are written: the
   * payload is the page's own buffer, not a copy. The next page is read ahead while this batch goes
   * out (one read in flight), so the outbox (in another process, behind IPC) works while the window
   * publishes; a page found empty ahead is read again when asked for, so records stored meanwhile
   * are not missed.
   */
  async #pageBatch(readPage: NonNullable<Outbox['readPage']>): Promise<Batch | null> {
    const ahead = this.#ahead;
    this.#ahead = undefined;
    let page = ahead && (await ahead);
    if (!page) page = await this.#readPage(readPage);
    if (page === null) return null;
    const { before, after } = this.#room;
    const jsonBytes = page.json.length - before - after;
    // A page without its room would have records overwritten by the header: never published.
    if (
      page.json[before - 1] !== 0x20 ||
      page.json[before] !== 0x7b ||
      page.json[before + jsonBytes] !== 0x20
    )
      throw new GatewayError('ATTACHE_INTERNAL', 'the outbox returned a page without the room asked for');
    if (jsonBytes + 2 > this.#budget) throw this.#tooLarge(page.firstSeq);
    const { firstSeq, lastSeq, count } = page;
    const head = `${header(this.#gatewayId, firstSeq, lastSeq, count, new Date().toISOString())}"records":[`;
    const bytes = Buffer.from(page.json.buffer, page.json.byteOffset, page.json.length);
    const start = before - Buffer.byteLength(head);
    bytes.write(head, start, 'utf8');
    bytes.write(closing, before + jsonBytes, 'latin1');
    const payload = bytes.subarray(start, before + jsonBytes + after);
    this.#afterSeq = lastSeq;
    const next = this.#readPage(readPage);
    next.catch(() => {}); // a failure is the next call's to report
    this.#ahead = next;
    const batch: Batch = { firstSeq, lastSeq, count, payload, contentType: contentTypes.none };
    if (page.release) batch.release = page.release;
    return batch;
  }

  #readPage(readPage: NonNullable<Outbox['readPage']>): Promise<RecordPage | null> {
    return readPage.call(this.#outbox, {
      afterSeq: this.#afterSeq,
      limit: readLimit,
      maxBytes: this.#budget - 2,
      room: this.#room,
    });
  }

  #tooLarge(seq: number): GatewayError {
    return new GatewayError(
      'ATTACHE_UPLINK_PUBLISH',
      `record ${seq} alone is larger than maxMessageBytes allows (${this.#budget} bytes of records)`,
    );
  }

  #plainBatch(records: StoredRecord[]): Batch | null {
    const parts: string[] = [];
    let used = 1;
    for (const record of records) {
      const size = Buffer.byteLength(record.json) + 1;
      if (used + size > this.#budget) break;
      parts.push(record.json);
      used += size;
    }
    if (parts.length === 0) return null;
    return this.#build(records, parts.length, `"records":[${parts.join(',')}]}`, contentTypes.none);
  }

  /** Compresses as many records as fit once base64-encoded, halving the count until they do. */
  #gzipBatch(records: StoredRecord[]): Batch | null {
    let count = records.length;
    while (count > 0) {
      const raw = `[${records
        .slice(0, count)
        .map((r) => r.json)
        .join(',')}]`;
      const encoded = gzipSync(raw).toString('base64');
      const rawBytes = Buffer.byteLength(raw);
      if (encoded.length <= this.#budget) {
        // Next time read enough raw JSON to fill the budget at this batch's ratio.
        this.#rawTarget = Math.max(1024, (this.#budget * gzipMargin * rawBytes) / encoded.length);
        return this.#build(
          records,
          count,
          `"encoding":"gzip","recordsGzip":"${encoded}"}`,
          contentTypes.gzip,
        );
      }
      const fit = Math.floor((count * this.#budget * gzipMargin) / encoded.length);
      count = Math.min(fit, count - 1);
    }
    return null;
  }

  #build(records: StoredRecord[], count: number, tail: string, contentType: string): Batch {
    const firstSeq = (records[0] as StoredRecord).seq;
    const lastSeq = (records[count - 1] as StoredRecord).seq;
    const head = header(this.#gatewayId, firstSeq, lastSeq, count, new Date().toISOString());
    return { firstSeq, lastSeq, count, payload: Buffer.from(head + tail), contentType };
  }
}
