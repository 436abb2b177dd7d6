// What a config reload needs beside the Gateway class: the reading sink built from a config, and the
// health check of a config update (changed adapters come up, a changed uplink is reachable).
import { isDeepStrictEqual } from 'node:util';
import type { LevelCache } from '@attache/cache';
import type { AttacheConfig, AttacheRecord, DeviceAdapter, Logger, ReadingSink } from '@attache/core';
import type { HealthReport } from '@attache/jobs';
import { ReadingNormalizer, SystemClock } from '@attache/normalizer';
import { probeTls } from '@attache/uplink/policy';

/** How long a config update's changed adapters have to connect before it is judged unhealthy, ms. */
export const settleMs = 10_000;
/** How long the TLS test connection to a changed uplink endpoint may take, ms. */
const probeTimeoutMs = 10_000;
const pollMs = 100;

/**
 * The sink the adapters of `config` deliver to: normalized (patient tokens from the cache) and
 * appended to the cache in call order; `onStored` gets each record once stored (not a duplicate).
 */
export function readingSink(
  config: AttacheConfig,
  cache: LevelCache,
  logger: Logger,
  onStored?: (record: AttacheRecord) => void,
): ReadingSink {
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
  return (reading) => {
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
}

/** The ids of the devices of `after` that are new or configured differently than in `before`. */
export function changedDevices(before: AttacheConfig, after: AttacheConfig): string[] {
  const old = new Map(before.devices.map((d) => [d.id, d]));
  const profilesChanged = !isDeepStrictEqual(before.modbusProfiles, after.modbusProfiles);
  return after.devices
    .filter((d) => !isDeepStrictEqual(old.get(d.id), d) || (profilesChanged && d.adapter === 'modbus'))
    .map((d) => d.id);
}

/**
 * Healthy when no adapter failed to start (`startErrors`, by device id) and every adapter of
 * `changed` is connected within {@link settleMs}; unchanged adapters are held to nothing more (an
 * unplugged device stays unplugged across a reload).
 */
export async function adaptersHealth(
  adapters: readonly DeviceAdapter[],
  changed: readonly string[],
  startErrors: ReadonlyMap<string, string>,
): Promise<HealthReport> {
  const [failedId, failure] = [...startErrors][0] ?? [];
  if (failedId !== undefined)
    return { healthy: false, reason: `adapter ${failedId} did not start: ${failure}` };
  const watched = adapters.filter((a) => changed.includes(a.deviceId));
  const deadline = Date.now() + settleMs;
  for (;;) {
    const waiting = watched.filter((a) => a.status().state !== 'connected');
    const first = waiting[0];
    if (!first) return { healthy: true };
    if (Date.now() >= deadline) {
      const status = first.status();
      const why = status.lastError?.message ?? `still ${status.state}`;
      return {
        healthy: false,
        reason: `adapter ${first.deviceId} not connected within ${settleMs / 1000} s: ${why}`,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * When the uplink section changed: a TLS test connection to the new endpoint with the new
 * certificate, key and CA must succeed. Healthy at once when it did not change.
 */
export async function uplinkHealth(before: AttacheConfig, after: AttacheConfig): Promise<HealthReport> {
  if (!after.uplink || isDeepStrictEqual(before.uplink, after.uplink)) return { healthy: true };
  try {
    await probeTls(after.uplink, probeTimeoutMs);
    return { healthy: true };
  } catch (err) {
    return { healthy: false, reason: `test connection to the new uplink failed: ${(err as Error).message}` };
  }
}
