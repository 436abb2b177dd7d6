import type { StoredRecord, UplinkConfig, WindowResult } from '@attache/core';

/** Parent → window process. */
export type ToWindow =
  | { type: 'start'; gatewayId: string; uplink: UplinkConfig; logLevel: string }
  | { type: 'abort' }
  | { type: 'reply'; id: number; records?: StoredRecord[]; error?: { code: string; message: string } };

/** Window process → parent: outbox requests, then the result. */
export type FromWindow =
  | { type: 'read'; id: number; afterSeq: number; limit: number; maxBytes: number }
  | { type: 'remove'; id: number; firstSeq: number; lastSeq: number }
  | { type: 'result'; result: WindowResult };
