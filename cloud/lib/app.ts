import { readFileSync } from 'node:fs';

import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks } from 'cdk-nag';

import { FleetStack } from './fleet-stack.js';
import { loadPolicies } from './policies.js';

/** The fleet's settings (`cloud/fleet.json`). */
export interface FleetConfig {
  /** One stack per region: the regions the gateways' `uplink.allowedRegions` and routes name. */
  regions: string[];
  templateName: string;
  thingGroup: string;
  serialAllowList: boolean;
}

/** Reads `cloud/fleet.json`. */
export function loadFleetConfig(): FleetConfig {
  return JSON.parse(readFileSync(new URL('../fleet.json', import.meta.url), 'utf8')) as FleetConfig;
}

/** The parts of a gateway config (`attache` config file) that name regions. */
interface GatewayUplink {
  endpoint?: string;
  allowedRegions?: string[];
  routes?: { endpoint?: string; allowedRegions?: string[] }[];
}

/**
 * The regions a gateway config sends to: for the default uplink and each of `uplink.routes`, its
 * `allowedRegions`, or else the region of its AWS IoT endpoint (`….iot[-fips].<region>.amazonaws.com`).
 * Throws a TypeError when a route names neither.
 */
export function gatewayRegions(config: { uplink?: GatewayUplink }): string[] {
  const uplink = config.uplink ?? {};
  const regions = [uplink, ...(uplink.routes ?? [])].flatMap((target) => {
    if (target.allowedRegions && target.allowedRegions.length > 0) return target.allowedRegions;
    const region = /\.iot(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com$/.exec(target.endpoint ?? '')?.[1];
    if (!region) throw new TypeError(`no region for endpoint "${target.endpoint ?? ''}": set allowedRegions`);
    return [region];
  });
  return [...new Set(regions)];
}

/** The stack name of `region`. */
export function stackName(region: string): string {
  return `Attache-${region}`;
}

/**
 * The CDK app: one {@link FleetStack} per region, checked by cdk-nag's AwsSolutions and HIPAA
 * Security packs (a finding that is not acknowledged with a reason fails the synthesis). The regions
 * are, first found: `regions` (comma-separated, also `-c regions=…`), the regions of the gateway
 * config file `gatewayConfig` (also `-c gatewayConfig=…`, see {@link gatewayRegions}), `config.regions`.
 */
export function buildApp(
  config: FleetConfig,
  options: { outdir?: string; regions?: string; gatewayConfig?: string } = {},
): App {
  const app = new App({
    outdir: options.outdir,
    context: { regions: options.regions, gatewayConfig: options.gatewayConfig },
  });
  const fromContext = app.node.tryGetContext('regions') as string | undefined;
  const gatewayConfig = app.node.tryGetContext('gatewayConfig') as string | undefined;
  const regions = fromContext
    ? fromContext.split(',').map((r) => r.trim())
    : gatewayConfig
      ? gatewayRegions(JSON.parse(readFileSync(gatewayConfig, 'utf8')))
      : config.regions;
  const policies = loadPolicies();
  for (const region of regions) {
    if (!/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/.test(region))
      throw new TypeError(`"${region}" is not an AWS region`);
    new FleetStack(app, stackName(region), {
      env: { region, account: process.env.CDK_DEFAULT_ACCOUNT },
      description: `Attaché fleet in ${region}: IoT policies, fleet provisioning, ingest, Jobs artifacts`,
      policies,
      templateName: config.templateName,
      thingGroup: config.thingGroup,
      serialAllowList: config.serialAllowList,
    });
  }
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app));
  return app;
}
