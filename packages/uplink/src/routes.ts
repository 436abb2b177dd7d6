import type { AttacheConfig, ConfigIssue, UplinkConfig } from '@attache/core';
import type { WindowReport } from './upload-window.js';

/** One entry of `uplink.routes` (core's generated `UplinkRouteConfig`). */
export type UplinkRoute = UplinkConfig['routes'][number];

/**
 * What the config schema cannot check about `uplink.routes`: every listed device is configured, no
 * device is in two routes, no two routes share a name. Resolves nothing, throws nothing: returns the
 * problems, each with its path in the config (empty when the routes are sound or absent).
 */
export function checkRoutes(config: AttacheConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const known = new Set(config.devices.map((d) => d.id));
  const owner = new Map<string, string>();
  const names = new Set<string>();
  (config.uplink?.routes ?? []).forEach((route, i) => {
    if (names.has(route.name)) {
      issues.push({ path: `/uplink/routes/${i}/name`, message: `another route is named "${route.name}"` });
    }
    names.add(route.name);
    route.devices.forEach((id, j) => {
      const path = `/uplink/routes/${i}/devices/${j}`;
      const other = owner.get(id);
      if (!known.has(id)) issues.push({ path, message: `no device "${id}" is configured` });
      else if (other !== undefined) {
        issues.push({ path, message: `device "${id}" is already routed to "${other}": routes overlap` });
      } else owner.set(id, route.name);
    });
  });
  return issues;
}

/**
 * The uplink config of one route's window: the route's endpoint, port, certificate, key and CA; its
 * own data-residency lists when it has them, else the uplink's; everything else (topics, batching,
 * flow control, fipsOnly, window deadline and budget) from `uplink`; no shadow, no trusted-time
 * request, no hooks, no provisioning and no further routes (the default route's window has those, around all routes).
 */
export function routeUplinkConfig(uplink: UplinkConfig, route: UplinkRoute): UplinkConfig {
  const config: UplinkConfig = {
    ...uplink,
    endpoint: route.endpoint,
    port: route.port,
    certFile: route.certFile,
    keyFile: route.keyFile,
    shadowName: '',
    trustedTime: { ...uplink.trustedTime, enabled: false },
    routes: [],
    window: { ...uplink.window },
  };
  delete config.window.preHook;
  delete config.window.postHook;
  delete config.caFile;
  delete config.provisioning;
  if (route.caFile !== undefined) config.caFile = route.caFile;
  if (route.allowedRegions !== undefined) config.allowedRegions = route.allowedRegions;
  if (route.allowedEndpoints !== undefined) config.allowedEndpoints = route.allowedEndpoints;
  return config;
}

const outcomeRank: Record<WindowReport['outcome'], number> = { drained: 0, deadline: 1, failed: 2 };

/**
 * The default route's window `result` with the route windows' `routes` (by name) attached: `outcome`
 * the worst of all, `error` the default window's or else the first failed route's, its message
 * prefixed `route <name>: `. Returns `result` itself when there are no routes.
 */
export function withRouteReports<R extends WindowReport>(
  result: WindowReport,
  routes: Record<string, R>,
): WindowReport & { routes?: Record<string, R> } {
  if (Object.keys(routes).length === 0) return result;
  let { outcome, error } = result;
  for (const [name, r] of Object.entries(routes)) {
    if (outcomeRank[r.outcome] > outcomeRank[outcome]) outcome = r.outcome;
    if (!error && r.error) error = { code: r.error.code, message: `route ${name}: ${r.error.message}` };
  }
  return { ...result, outcome, ...(error ? { error } : {}), routes };
}
