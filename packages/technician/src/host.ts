import type { AdapterStatus, BacklogStats, Observation, WindowResult } from '@attache/core';

/**
 * One reading as the page shows it: the normalized record after de-identification, reduced to what
 * a technician checks (device, time, codes, values, units, status). No patient or specimen token,
 * no instrument identity, never the raw frame.
 */
export interface LiveReading {
  deviceId: string;
  /** RFC 3339, the gateway's clock. */
  capturedAt: string;
  observations: Pick<Observation, 'code' | 'system' | 'value' | 'unit' | 'status'>[];
}

/** What the page shows of the gateway; `attache status` holds the same facts. */
export interface TechnicianStatus {
  gatewayId: string;
  startedAt: string | null;
  adapters: AdapterStatus[];
  backlog: BacklogStats;
  lastWindow: WindowResult | null;
  uplink: { configured: boolean; windowOpen: boolean };
  /** The provisioning state in words (`provisioned`, `unprovisioned`, …), when the box knows it. */
  provisioning?: string;
  /** The uplink certificate's end date (RFC 3339), when there is one. */
  certificateNotAfter?: string;
  /** True when the system clock is synchronized (NTP). */
  clockSynchronized?: boolean;
}

/**
 * What the technician page needs of the running gateway. The gateway implements it; the page
 * never touches the cache, the adapters or the config itself.
 */
export interface TechnicianHost {
  /** The gateway's status now. */
  status(): Promise<TechnicianStatus>;
  /**
   * Calls `listener` with every reading once it is durably stored; returns the unsubscribe
   * function. The listener must not throw (the page catches its own errors).
   */
  onReading(listener: (reading: LiveReading) => void): () => void;
  /** Opens a connectivity window now (or joins the open one) and resolves with its result. */
  openWindow(): Promise<WindowResult>;
}
