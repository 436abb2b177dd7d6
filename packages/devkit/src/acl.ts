import { readFileSync } from 'node:fs';

/** One statement of an AWS IoT policy (the subset this project writes). */
export interface IotPolicyStatement {
  Effect: string;
  Action: string | string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string>>;
}

/** An AWS IoT policy document whose resources are relative (`topic/…`, `topicfilter/…`, `client/…`). */
export interface IotPolicyDocument {
  Version: string;
  Statement: IotPolicyStatement[];
}

/** The fleet's two IoT policies, as in `cloud/policies/iot-policies.json`. */
export interface FleetIotPolicies {
  /** A provisioned gateway's policy: everything scoped to its own thing. */
  gateway: IotPolicyDocument;
  /** The fleet-wide claim's policy: Fleet Provisioning of one template only. */
  claim: IotPolicyDocument;
}

/** Options of {@link mosquittoAcl}. */
export interface MosquittoAclOptions {
  /** Default: {@link loadIotPolicies}(). */
  policies?: FleetIotPolicies;
  /** Fills `{templateName}` in the claim policy. Default `attache-fleet` (cloud/fleet.json). */
  templateName?: string;
  /**
   * Certificate CNs of the cloud side (the dashboard stand-in, the Jobs, Shadow and Fleet
   * Provisioning emulators): they may publish and receive anything. Default `['dashboard']`.
   */
  serviceUsers?: string[];
  /** Certificate CNs that hold the fleet's claim. Default `['claim']`. */
  claimUsers?: string[];
}

/** The repository's policy file, the one the CDK app deploys. */
export const iotPoliciesFile = new URL('../../../cloud/policies/iot-policies.json', import.meta.url);

/** Reads the fleet's IoT policies (default: the repository's `cloud/policies/iot-policies.json`). */
export function loadIotPolicies(file: URL | string = iotPoliciesFile): FleetIotPolicies {
  const { gateway, claim } = JSON.parse(readFileSync(file, 'utf8')) as FleetIotPolicies;
  return { gateway, claim };
}

/** The policy variables the test broker can express: the certificate's CN is the thing name. */
const variables: Record<string, string> = {
  '${iot:Connection.Thing.ThingName}': '%u',
  '${iot:ClientId}': '%c',
};

/** The one condition a statement may carry: on AWS it ties the connection to the thing; here the CN does. */
const thingAttached = JSON.stringify({ Bool: { 'iot:Connection.Thing.IsAttached': 'true' } });

/** `resource` (after its `topic/` or `topicfilter/` prefix) as a mosquitto ACL topic. */
function aclTopic(resource: string, templateName: string): string {
  const filled = resource.replaceAll('{templateName}', templateName);
  return filled
    .split('/')
    .map((level) => {
      if (level === '*') return '+';
      let out = level;
      for (const [variable, pattern] of Object.entries(variables)) {
        if (out === variable) out = pattern;
      }
      if (/[*+#]|\$\{/.test(out.replace(/^%[uc]$/, ''))) {
        throw new TypeError(
          `"${resource}": the test broker can only express "*" and policy variables as a whole topic level`,
        );
      }
      return out;
    })
    .join('/');
}

function actionsOf(statement: IotPolicyStatement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/**
 * The mosquitto ACL lines (`read`/`write` access and topic) that `document` grants. Publish
 * becomes `write`; Subscribe and Receive become `read` (mosquitto's `read` allows both, so the
 * policy must grant them on the same topics). Connect adds nothing: a client's topics follow its
 * certificate's CN whatever client id it sends. Throws a TypeError on what cannot be expressed
 * (Deny, other conditions or actions, wildcards inside a level), so that the test broker never
 * silently enforces less than the policy.
 */
export function aclRules(document: IotPolicyDocument, templateName: string): string[] {
  const grants: Record<'iot:Publish' | 'iot:Subscribe' | 'iot:Receive', Set<string>> = {
    'iot:Publish': new Set(),
    'iot:Subscribe': new Set(),
    'iot:Receive': new Set(),
  };
  for (const statement of document.Statement) {
    if (statement.Effect !== 'Allow') throw new TypeError(`unsupported Effect "${statement.Effect}"`);
    const condition = statement.Condition === undefined ? undefined : JSON.stringify(statement.Condition);
    for (const action of actionsOf(statement)) {
      // Not MQTT: the credentials provider (HTTPS) checks it, the broker has nothing to grant.
      if (action === 'iot:Connect' || action === 'iot:AssumeRoleWithCertificate') continue;
      if (!(action in grants)) throw new TypeError(`unsupported action "${action}"`);
      if (condition !== undefined) throw new TypeError(`unsupported condition on ${action}: ${condition}`);
      const prefix = action === 'iot:Subscribe' ? 'topicfilter/' : 'topic/';
      for (const resource of statement.Resource) {
        if (!resource.startsWith(prefix))
          throw new TypeError(`${action} on "${resource}": expected ${prefix}…`);
        grants[action as keyof typeof grants].add(aclTopic(resource.slice(prefix.length), templateName));
      }
    }
    if (condition !== undefined && condition !== thingAttached) {
      throw new TypeError(`unsupported condition ${condition}`);
    }
  }
  const subscribe = [...grants['iot:Subscribe']];
  const receive = [...grants['iot:Receive']];
  const unpaired = [
    ...subscribe.filter((t) => !grants['iot:Receive'].has(t)),
    ...receive.filter((t) => !grants['iot:Subscribe'].has(t)),
  ];
  if (unpaired.length > 0) {
    throw new TypeError(`Subscribe and Receive must name the same topics; unpaired: ${unpaired.join(', ')}`);
  }
  return [...[...grants['iot:Publish']].map((t) => `write ${t}`), ...subscribe.map((t) => `read ${t}`)];
}

/**
 * A mosquitto `acl_file` (for `use_identity_as_username true`: user name = certificate CN = thing
 * name) generated from the fleet's IoT policies: the gateway policy as `pattern` lines with the
 * thing name as `%u`, the claim policy for each claim CN, everything for the service CNs.
 * Mosquitto applies `pattern` lines to every client; a claim connection has no thing on AWS, so
 * the claim CNs are denied every gateway topic explicitly.
 */
export function mosquittoAcl(options: MosquittoAclOptions = {}): string {
  const policies = options.policies ?? loadIotPolicies();
  const templateName = options.templateName ?? 'attache-fleet';
  const gateway = aclRules(policies.gateway, templateName);
  const lines = [
    '# Generated from cloud/policies/iot-policies.json by @attache/devkit (acl.ts): do not edit.',
    '# Gateways (policy "gateway"): %u is the certificate CN, i.e. the thing name.',
    ...gateway.map((rule) => `pattern ${rule}`),
  ];
  // Mosquitto applies pattern lines to every client, and a claim connection has no thing on AWS:
  // deny the claim every gateway topic (deny lines win over allows).
  const notForClaims = [...new Set(gateway.map((rule) => rule.replace(/^\w+ /, '').replaceAll('%u', '+')))];
  for (const user of options.claimUsers ?? ['claim']) {
    lines.push('', `# Claim (policy "claim", template ${templateName})`, `user ${user}`);
    lines.push(...notForClaims.map((topic) => `topic deny ${topic}`));
    for (const rule of aclRules(policies.claim, templateName)) {
      if (rule.includes('%')) throw new TypeError(`the claim policy cannot use policy variables: ${rule}`);
      lines.push(`topic ${rule}`);
    }
  }
  for (const user of options.serviceUsers ?? ['dashboard']) {
    lines.push('', '# The cloud side (AWS services, the dashboard)', `user ${user}`);
    lines.push('topic readwrite #', 'topic readwrite $aws/#');
  }
  return `${lines.join('\n')}\n`;
}
