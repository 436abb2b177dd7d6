import type { JsonObject, SettingsOutcome } from '@attache/uplink/policy';
import type { GatewayStatus } from './status.js';
import type { ClockStamp } from './window-events.js';
import type { WindowRecord } from './window-runner.js';

/**
 * The shadow's `state.reported` and the state message's `state`, from the gateway's status: no
 * readings, no patient data, error codes and messages only.
 */
export function reportedState(
  status: GatewayStatus,
  extra: { version: string; clock: ClockStamp; settings: SettingsOutcome },
): JsonObject {
  const w = (status.lastWindow ?? null) as WindowRecord | null;
  return {
    version: extra.version,
    startedAt: status.startedAt,
    adapters: status.adapters.map((a) => ({
      deviceId: a.deviceId,
      adapter: a.adapter,
      state: a.state,
      since: a.since,
      stored: a.stored,
      ...(a.lastError ? { lastErrorCode: a.lastError.code } : {}),
    })),
    backlog: {
      records: status.backlog.records,
      bytes: status.backlog.bytes,
      oldestCapturedAt: status.backlog.oldestCapturedAt,
    },
    cache: {
      full: status.cache.full,
      dropped: status.cache.dropped,
      quarantined: status.cache.quarantined,
    },
    lastWindow: w && {
      openedAt: w.openedAt,
      closedAt: w.closedAt,
      outcome: w.outcome,
      ...(w.endedBy ? { endedBy: w.endedBy } : {}),
      ...(w.trigger ? { trigger: w.trigger } : {}),
      records: w.records,
      messages: w.messages,
      bytes: w.bytes,
      ...(w.error ? { errorCode: w.error.code, errorMessage: w.error.message } : {}),
      ...(w.jobsError ? { jobsErrorCode: w.jobsError.code, jobsErrorMessage: w.jobsError.message } : {}),
    },
    clock: extra.clock as unknown as JsonObject,
    windowPolicies: status.uplink.policies ?? [],
    settings: extra.settings as unknown as JsonObject,
  };
}
