// `@attache/uplink/policy`: everything about windows that needs no MQTT client (window policies and
// schedules, routes, residency, hooks, the TLS and time probes, topics), so that the gateway's main
// process never loads the AWS IoT SDK: only a window's own process does (through the main entry).
export { type HookConfig, type HookResult, runHook } from './hooks.js';
export { type FleetProvisioningState, readFleetProvisioning } from './provisioning-state.js';
export { checkResidency, type EndpointLocation, locateEndpoint } from './residency.js';
export { hasRouteTo } from './route-probe.js';
export { checkRoutes, routeUplinkConfig, type UplinkRoute, withRouteReports } from './routes.js';
export {
  checkSchedules,
  currentOrNextSlot,
  type DailySlot,
  parseSlot,
  type SlotOccurrence,
} from './schedule.js';
export { amazonRootCasFile, brokerCaFile, isAwsEndpoint, type TlsPolicy, tlsPolicy } from './tls-policy.js';
export { type ProbeResult, probeTls } from './tls-probe.js';
export { type ShadowTopics, shadowTopics, type UplinkTopics, uplinkTopics } from './topics.js';
export {
  type FetchTrustedTimeOptions,
  fetchTrustedTime,
  type TrustedTime,
  trustedTimeUrl,
} from './trusted-time.js';
export type { EndedBy, WindowReport } from './upload-window.js';
export type { JsonObject, PendingEvent, SettingsOutcome, WindowChannel, WindowHost } from './window-host.js';
export {
  type SchedulerClock,
  systemClock,
  type WindowRequest,
  WindowScheduler,
  type WindowSchedulerOptions,
  type WindowTrigger,
} from './window-scheduler.js';
