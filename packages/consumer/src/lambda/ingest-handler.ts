import { type ConsumedRecord, type Delivery, MessageConsumer } from '../consumer.js';
import { isConsumerError } from '../errors.js';
import { applyCorrection } from '../time.js';
import { ObjectStateStore } from './object-state-store.js';
import type { ObjectStore } from './s3-object-store.js';

/** The part of an S3 event notification the handler reads. */
export interface S3Notification {
  Records: { s3: { object: { key: string } } }[];
}

export interface IngestHandlerOptions {
  /** The ingest bucket, where the IoT rule writes `<telemetry|events|state>/<thing>/<date>/<id>.json`. */
  objects: ObjectStore;
  /** The consumer's clock (ms). Default `Date.now`. */
  now?: () => number;
  /** See ConsumerOptions.gapWaitMs. Default a day. */
  gapWaitMs?: number;
  /** Structured log lines (one JSON object each). Default: none. */
  log?: (line: Record<string, unknown>) => void;
}

/** What one invocation committed, for the log and tests (an attempt lost to a conflict is not counted). */
export interface IngestSummary {
  messages: number;
  records: number;
  events: number;
  duplicates: number;
  gaps: number;
  retimed: number;
  /** Objects refused (not JSON, unknown schemaVersion, invalid): copied under `consumed/rejected/`. */
  rejected: number;
}

const KEY = /^(telemetry|events|state)\/([a-zA-Z0-9:_-]{1,128})\//;
const pad = (n: number) => String(n).padStart(16, '0');

/**
 * Where the handler writes, in the same bucket (outside the prefixes that trigger it):
 * `consumed/records/<gatewayId>/<seq>.json` (a ConsumedRecord: the record, its corrected time, names),
 * `consumed/events/<gatewayId>/<eventId>.json`, `consumed/state/<gatewayId>/latest.json`,
 * `consumed/gaps/<gatewayId>/<from>.json`, `consumed/rejected/<original key>` and the dedupe
 * state `consumer-state/<gatewayId>.json`. Every write is keyed by what it holds, so writing it again
 * (a retry) leaves the same object.
 */
export function createIngestHandler(
  options: IngestHandlerOptions,
): (event: S3Notification) => Promise<IngestSummary> {
  const { objects, log = () => undefined } = options;
  const consumer = new MessageConsumer({
    store: new ObjectStateStore(objects),
    ...(options.now ? { now: options.now } : {}),
    ...(options.gapWaitMs === undefined ? {} : { gapWaitMs: options.gapWaitMs }),
  });
  const putJson = async (key: string, value: unknown) => {
    await objects.put(key, JSON.stringify(value));
  };

  async function store(delivery: Delivery, summary: IngestSummary): Promise<void> {
    const gw = delivery.gatewayId;
    for (const r of delivery.records) await putJson(`consumed/records/${gw}/${pad(r.seq)}.json`, r);
    for (const e of delivery.events) await putJson(`consumed/events/${gw}/${pad(e.event.eventId)}.json`, e);
    if (delivery.state) await putJson(`consumed/state/${gw}/latest.json`, delivery.state);
    for (const g of delivery.gaps) await putJson(`consumed/gaps/${gw}/${pad(g.from)}.json`, g);
    for (const retime of delivery.retimes) {
      for (const [from, to] of retime.seqRanges) {
        for (let seq = from; seq <= to; seq++) {
          const key = `consumed/records/${gw}/${pad(seq)}.json`;
          const object = await objects.get(key);
          if (!object) continue;
          const stored = JSON.parse(new TextDecoder().decode(object.body)) as ConsumedRecord;
          if (stored.timeSource !== 'unknown') continue;
          await putJson(key, {
            ...stored,
            time: applyCorrection(stored.record.clock, retime.correction),
            timeSource: 'corrected',
          });
          summary.retimed++;
        }
      }
    }
  }

  function count(delivery: Delivery, summary: IngestSummary): void {
    summary.messages++;
    summary.records += delivery.records.length;
    summary.events += delivery.events.length;
    summary.duplicates += delivery.duplicates;
    summary.gaps += delivery.gaps.length;
  }

  async function one(key: string, summary: IngestSummary): Promise<void> {
    const m = KEY.exec(key);
    if (!m) return;
    const object = await objects.get(key);
    if (!object) return;
    const topic = `dt/attache/${m[2]}/${m[1]}`;
    for (let attempt = 1; ; attempt++) {
      let delivery: Delivery;
      try {
        delivery = await consumer.receive(object.body, topic);
      } catch (err) {
        if (!isConsumerError(err) || err.code === 'ATTACHE_CONSUMER_STORE') throw err;
        await objects.put(`consumed/rejected/${key}`, new TextDecoder().decode(object.body));
        log({ level: 'warn', msg: 'message refused', key, code: err.code, issues: err.issues.slice(0, 10) });
        summary.rejected++;
        return;
      }
      await store(delivery, summary);
      try {
        await delivery.commit();
        count(delivery, summary);
        return;
      } catch (err) {
        if (attempt >= 5 || !isConsumerError(err, 'ATTACHE_CONSUMER_CONFLICT')) throw err;
      }
    }
  }

  return async (event) => {
    const summary: IngestSummary = {
      messages: 0,
      records: 0,
      events: 0,
      duplicates: 0,
      gaps: 0,
      retimed: 0,
      rejected: 0,
    };
    for (const record of event.Records) {
      // S3 event keys are URL-encoded with '+' for spaces.
      await one(decodeURIComponent(record.s3.object.key.replace(/\+/g, ' ')), summary);
    }
    log({ level: 'info', msg: 'ingested', ...summary });
    return summary;
  };
}
