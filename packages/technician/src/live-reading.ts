import type { AttacheRecord } from '@attache/core';
import { codeName } from './code-names.js';
import type { LiveReading } from './host.js';

/**
 * A stored record as the page may show it: device, time and each observation's code (and its name),
 * system, value,
 * unit and status. The patient and specimen tokens, the instrument's identity, device times and
 * every other field are left out.
 */
export function liveReading(
  record: Pick<AttacheRecord, 'deviceId' | 'capturedAt' | 'observations'>,
): LiveReading {
  return {
    deviceId: record.deviceId,
    capturedAt: record.capturedAt,
    observations: record.observations.map((o) => ({
      code: o.code,
      name: codeName(o.code),
      system: o.system,
      value: o.value,
      unit: o.unit,
      status: o.status,
    })),
  };
}
