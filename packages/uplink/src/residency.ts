import type { UplinkConfig } from '@attache/core';
import { GatewayError } from '@attache/core';

/** Where an endpoint host is, as far as its name tells. */
export interface EndpointLocation {
  /** The AWS region in the host name, or null for a host that is not an AWS IoT endpoint. */
  region: string | null;
  /** True for AWS IoT's FIPS endpoints (`*.iot-fips.<region>.amazonaws.com`). */
  fips: boolean;
}

// xxxxxxxx-ats.iot.eu-central-1.amazonaws.com, data.iot-fips.us-east-1.amazonaws.com,
// xxxx-ats.iot.cn-north-1.amazonaws.com.cn
const awsIotHost =
  /^(?:[a-z0-9-]+\.)*iot(-fips)?\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9])\.amazonaws\.com(?:\.cn)?$/;

/** Reads the region and FIPS-ness from an AWS IoT endpoint host name. */
export function locateEndpoint(host: string): EndpointLocation {
  const match = awsIotHost.exec(host.toLowerCase());
  if (!match) return { region: null, fips: false };
  return { region: match[2] ?? null, fips: match[1] !== undefined };
}

/**
 * Data residency: throws `ATTACHE_UPLINK_CONNECT` when `config.endpoint` is outside
 * `allowedRegions`/`allowedEndpoints` (when either is set), or, under `fipsOnly`, neither a FIPS
 * endpoint nor listed in `allowedEndpoints`.
 * Called before any connection is attempted.
 */
export function checkResidency(config: UplinkConfig): EndpointLocation {
  const host = config.endpoint.toLowerCase();
  const location = locateEndpoint(host);
  const regions = config.allowedRegions ?? [];
  const endpoints = (config.allowedEndpoints ?? []).map((e) => e.toLowerCase());
  // An exact allowedEndpoints entry is the operator's statement about that host (e.g. a FIPS VPC endpoint).
  if (config.fipsOnly && !location.fips && !endpoints.includes(host)) {
    throw new GatewayError(
      'ATTACHE_UPLINK_CONNECT',
      `endpoint ${host} refused: uplink.fipsOnly allows only AWS IoT FIPS endpoints (*.iot-fips.<region>.amazonaws.com) and hosts listed in allowedEndpoints`,
    );
  }
  if (regions.length === 0 && endpoints.length === 0) return location;
  const byRegion = location.region !== null && regions.includes(location.region);
  if (byRegion || endpoints.includes(host)) return location;
  const where = location.region ? `region ${location.region}` : 'no AWS region';
  throw new GatewayError(
    'ATTACHE_UPLINK_CONNECT',
    `endpoint ${host} (${where}) refused by data residency: allowed regions [${regions.join(', ')}], allowed endpoints [${endpoints.join(', ')}]`,
  );
}
