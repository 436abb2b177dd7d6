import type { LevelCache } from '@attache/cache';
import type {
  AttacheConfig,
  AttacheRecord,
  DeviceReading,
  Logger,
  ReadingSink,
  RecordDraft,
} from '@attache/core';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';

/**
 * The sink the adapters of `config` deliver to: normalized (patient tokens from the cache) and
 * appended to the cache in call order; `onStored` gets each record once stored (not a duplicate).
 */
export function readingSink(
  config: AttacheConfig,
  cache: LevelCache,
  logger: Logger,
  onStored?: (record: AttacheRecord) => void,
): ReadingSink & Required<Pick<ReadingSink, 'all'>> {
  const normalizer = new ReadingNormalizer({
    gatewayId: config.gateway.id,
    devices: config.devices,
    tokenizer: cache,
    clock: new SystemClock({ syncFile: config.gateway.clockSyncFile }),
    logger,
  });
  // Normalization is asynchronous (patient tokens), so each waits for the previous one to reach the
  // cache's queue: records keep call order while many wait for the same synced write.
  let previous: Promise<unknown> = Promise.resolve();
  const one: ReadingSink = (reading) => {
    const draft = previous.then(() => normalizer.normalize(reading));
    previous = draft.catch(() => undefined);
    // Scoped to the device: two devices may well send the same bytes.
    const key = reading.idempotencyKey && `${reading.deviceId}:${reading.idempotencyKey}`;
    return draft
      .then((d) => (key === undefined ? cache.append(d) : cache.append(d, { idempotencyKey: key })))
      .then((record) => {
        if (record) onStored?.(record);
      });
  };
  // The readings of one message: every one normalized first, then appended all or none.
  const all = (readings: DeviceReading[]): Promise<void> => {
    const drafts = previous.then(async () => {
      const normalized: RecordDraft[] = [];
      for (const reading of readings) normalized.push(await normalizer.normalize(reading));
      return normalized;
    });
    previous = drafts.catch(() => undefined);
    const keys = readings.map((r) => r.idempotencyKey && `${r.deviceId}:${r.idempotencyKey}`);
    return drafts
      .then((d) => cache.appendAll(d, { idempotencyKeys: keys }))
      .then((records) => {
        for (const record of records) if (record) onStored?.(record);
      });
  };
  return Object.assign(one, { all });
}

/**
 * The gateway's sink: a routed device's records go to its route's outbox (`outboxFor`), all others
 * to `cache`; each listener in `stored` gets every record once stored (the technician page's live
 * readings). A listener's failure is logged, never the device's: the record is stored whatever it does.
 */
export function routedSink(
  config: AttacheConfig,
  cache: LevelCache,
  outboxFor: (deviceId: string) => LevelCache | undefined,
  logger: Logger,
  stored: ReadonlySet<(record: AttacheRecord) => void>,
): ReadingSink {
  const onStored = (record: AttacheRecord) => {
    for (const listener of stored) {
      try {
        listener(record);
      } catch (err) {
        logger.error({ err }, 'a live-reading listener failed');
      }
    }
  };
  const main = readingSink(config, cache, logger, onStored);
  type Sink = ReturnType<typeof readingSink>;
  const byOutbox = new Map<LevelCache, Sink>();
  const byDevice = new Map<string, Sink>();
  for (const { id } of config.devices) {
    const outbox = outboxFor(id);
    if (!outbox) continue;
    if (!byOutbox.has(outbox)) byOutbox.set(outbox, readingSink(config, outbox, logger, onStored));
    byDevice.set(id, byOutbox.get(outbox) as Sink);
  }
  const sink: ReadingSink = (reading) => (byDevice.get(reading.deviceId) ?? main)(reading);
  // The readings of one call come from one device.
  sink.all = (readings) => (byDevice.get(readings[0]?.deviceId ?? '') ?? main).all(readings);
  return sink;
}
