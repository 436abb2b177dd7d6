// The health of a config update the gateway reloaded: its changed adapters come up, a changed
// uplink is reachable with its new certificates.
import { isDeepStrictEqual } from 'node:util';
import { type AttacheConfig, type Clock, type DeviceAdapter, systemClock } from '@attache/core';
import type { HealthReport } from '@attache/jobs';
import { probeTls } from '@attache/uplink/policy';

/** How long a config update's changed adapters have to connect before it is judged unhealthy, ms. */
export const settleMs = 10_000;
/** How long the TLS test connection to a changed uplink endpoint may take, ms. */
const probeTimeoutMs = 10_000;
const pollMs = 100;

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
  clock: Clock = systemClock,
): Promise<HealthReport> {
  const [failedId, failure] = [...startErrors][0] ?? [];
  if (failedId !== undefined)
    return { healthy: false, reason: `adapter ${failedId} did not start: ${failure}` };
  const watched = adapters.filter((a) => changed.includes(a.deviceId));
  const deadline = clock.monotonicMs() + settleMs;
  for (;;) {
    const waiting = watched.filter((a) => a.status().state !== 'connected');
    const first = waiting[0];
    if (!first) return { healthy: true };
    if (clock.monotonicMs() >= deadline) {
      const status = first.status();
      const why = status.lastError?.message ?? `still ${status.state}`;
      return {
        healthy: false,
        reason: `adapter ${first.deviceId} not connected within ${settleMs / 1000} s: ${why}`,
      };
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, pollMs));
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
