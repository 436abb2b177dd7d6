// The records a drain benchmark fills its backlog with (drain.mjs, drain-cache.mjs): pulse-oximeter
// readings of 12 beds, one a second.

/** The gateway they come from. */
export const gatewayId = 'gw-bench';

/** Record `n`, as a device adapter hands it to the cache. */
export function draft(n) {
  return {
    gatewayId,
    deviceId: `spo2-bed${n % 12}`,
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n * 1000 },
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + (n % 10), unit: '%', status: 'valid' },
      { code: 'MDC_PULS_OXIM_PULS_RATE', system: 'MDC', value: 60 + (n % 40), unit: '/min', status: 'valid' },
    ],
  };
}
