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

/** The stack name of `region`. */
export function stackName(region: string): string {
  return `Attache-${region}`;
}

/**
 * The CDK app: one {@link FleetStack} per region, checked by cdk-nag's AwsSolutions and HIPAA
 * Security packs (a finding that is not acknowledged with a reason fails the synthesis).
 * `regions` (comma-separated, from `-c regions=…`) overrides the config's regions.
 */
export function buildApp(config: FleetConfig, options: { outdir?: string; regions?: string } = {}): App {
  const app = new App({ outdir: options.outdir, context: { regions: options.regions } });
  const fromContext = app.node.tryGetContext('regions') as string | undefined;
  const regions = fromContext ? fromContext.split(',').map((r) => r.trim()) : config.regions;
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
