// `attache watch` on the gateway's side: the control socket's `watch` method.
import type { AttacheRecord } from '@attache/core';
import { liveReading } from '@attache/technician';

/**
 * Sends every record stored from now on as an event `{ reading }` (de-identified: see
 * `liveReading`) until the client goes; resolves then (its answer is never read).
 */
export function watchReadings(
  stored: Set<(record: AttacheRecord) => void>,
  notify: (event: object) => void,
  closed: AbortSignal,
): Promise<null> {
  return new Promise((resolve) => {
    const listener = (record: AttacheRecord) => notify({ reading: liveReading(record) });
    stored.add(listener);
    closed.addEventListener(
      'abort',
      () => {
        stored.delete(listener);
        resolve(null);
      },
      { once: true },
    );
  });
}
