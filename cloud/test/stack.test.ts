import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aclRules, loadIotPolicies } from '@attache/devkit';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import t from 'tap';
import { buildApp, type FleetConfig, gatewayRegions, loadFleetConfig, stackName } from '../lib/app.js';
import { serialAllowed } from '../lib/provisioning-hook.js';

// The CDK app synthesized offline (no AWS account), with cdk-nag's AwsSolutions and HIPAA Security
// packs: a finding without an acknowledgement makes synth() throw.

const regions = ['eu-central-1', 'eu-west-1'];
const config: FleetConfig = { ...loadFleetConfig(), regions };
const outdir = t.testdir();
const app = buildApp(config, { outdir });
const assembly = app.synth();
const templates = new Map(
  regions.map((region) => {
    const artifact = assembly.getStackByName(stackName(region));
    return [region, JSON.parse(readFileSync(join(outdir, artifact.templateFile), 'utf8'))];
  }),
);
type Json = Record<string, unknown>;
const resources = (region: string, type: string): Json[] =>
  Object.values((templates.get(region) as { Resources: Record<string, Json> }).Resources).filter(
    (r) => r.Type === type,
  );

/** Resolves the Fn::Join/Ref pseudo parameters CloudFormation would, for account 123456789012. */
function resolve(value: unknown, region: string): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(v, region));
  if (value === null || typeof value !== 'object') return value;
  const object = value as Json;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => resolve(p, region)).join(separator);
  }
  if ('Ref' in object) {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': region,
      'AWS::AccountId': '123456789012',
    };
    const resolved = pseudo[object.Ref as string];
    if (resolved === undefined) throw new Error(`unexpected Ref ${String(object.Ref)}`);
    return resolved;
  }
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, resolve(v, region)]));
}

function policy(region: string, name: string): { Statement: { Action: string; Resource: string[] }[] } {
  const found = resources(region, 'AWS::IoT::Policy').find((r) => (r.Properties as Json).PolicyName === name);
  if (!found) throw new Error(`no policy ${name} in ${region}`);
  return resolve((found.Properties as Json).PolicyDocument, region) as ReturnType<typeof policy>;
}

t.test('one stack per region, each pinned to its region, nothing of another region in it', async (t) => {
  t.same(
    assembly.stacks.map((s) => [s.stackName, s.environment.region]),
    regions.map((r) => [stackName(r), r]),
  );
  for (const [region, template] of templates) {
    for (const other of regions.filter((r) => r !== region)) {
      t.notOk(JSON.stringify(template).includes(other), `${region}'s template never names ${other}`);
    }
    t.same(
      resources(region, 'AWS::S3::Bucket').filter(
        (b) => 'ReplicationConfiguration' in (b.Properties as Json),
      ),
      [],
    );
  }
});

t.test('the deployed IoT policies are the committed ones (cloud/policies/iot-policies.json)', async (t) => {
  const committed = loadIotPolicies();
  for (const region of regions) {
    const arn = (r: string) =>
      `arn:aws:iot:${region}:123456789012:${r.replaceAll('{templateName}', config.templateName)}`;
    for (const [name, document] of [
      ['attache-gateway', committed.gateway],
      ['attache-claim', committed.claim],
    ] as const) {
      t.same(
        policy(region, name),
        { ...document, Statement: document.Statement.map((s) => ({ ...s, Resource: s.Resource.map(arn) })) },
        `${region}: ${name}`,
      );
    }
  }
});

t.test('the gateway policy names only its own thing; the claim only its template', async (t) => {
  const thing = ['$', '{iot:Connection.Thing.ThingName}'].join('');
  for (const statement of policy('eu-central-1', 'attache-gateway').Statement) {
    if (statement.Action === 'iot:AssumeRoleWithCertificate') {
      // Not a thing's resource: the one role alias of files up (its role is scoped to the thing).
      t.same(statement.Resource, ['arn:aws:iot:eu-central-1:123456789012:rolealias/attache-files-up']);
      continue;
    }
    for (const resource of statement.Resource) {
      const [before, after] = resource.split(thing);
      t.ok(after !== undefined, `${resource} is scoped to the connected thing`);
      t.notMatch(before, /[*+#]/, `no wildcard before the thing: ${resource}`);
      t.notMatch(
        after ?? '',
        /[+#]|\*[^/]|[^/]\*/,
        `"*" only as a whole level of its own topics: ${resource}`,
      );
    }
  }
  const claim = policy('eu-central-1', 'attache-claim').Statement.flatMap((s) => s.Resource);
  for (const resource of claim.filter((r) => !r.includes(':client/'))) {
    t.match(
      resource,
      /:topic(filter)?\/\$aws\/(certificates\/create-from-csr|provisioning-templates\/attache-fleet\/provision)\/json(\/accepted|\/rejected)?$/,
      `claim: ${resource}`,
    );
  }
  // Both translate to the test broker's ACL, so the end-to-end tests run under these policies.
  t.ok(aclRules(loadIotPolicies().gateway, config.templateName).length > 0);
});

t.test(
  'provisioning: thing attache-<serial> in the fleet group with the gateway policy, allow-list hook',
  async (t) => {
    const template = Template.fromJSON(templates.get('eu-central-1') as Json);
    const [provisioning] = resources('eu-central-1', 'AWS::IoT::ProvisioningTemplate');
    const props = (provisioning as Json).Properties as Json;
    t.equal(props.TemplateName, 'attache-fleet');
    t.ok(props.PreProvisioningHook, 'the pre-provisioning hook is configured');
    const body = JSON.parse(props.TemplateBody as string);
    t.same(body.Parameters.SerialNumber, { Type: 'String' });
    t.same(body.Resources.thing.Properties.ThingName, {
      'Fn::Join': ['', ['attache-', { Ref: 'SerialNumber' }]],
    });
    t.same(body.Resources.thing.Properties.ThingGroups, [config.thingGroup]);
    t.same(body.Resources.policy.Properties, { PolicyName: 'attache-gateway' });
    template.hasResourceProperties('AWS::IoT::ThingGroup', { ThingGroupName: config.thingGroup });
    template.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 10 });
  },
);

t.test(
  'ingest rule: telemetry, events and state into the encrypted bucket, failures to a queue',
  async (t) => {
    const template = Template.fromJSON(templates.get('eu-central-1') as Json);
    const [rule] = resources('eu-central-1', 'AWS::IoT::TopicRule');
    const payload = ((rule as Json).Properties as Json).TopicRulePayload as Json;
    t.equal(
      ((rule as Json).Properties as Json).RuleName,
      'attache_ingest',
      'the Basic Ingest rule name of the policy',
    );
    t.equal(payload.Sql, "SELECT * FROM 'dt/attache/+/+'");
    t.match(payload.Actions, [{ S3: { Key: /^\$\{topic\(4\)\}\/\$\{topic\(3\)\}\// } }]);
    t.match(payload.ErrorAction, { Sqs: { QueueUrl: {} } });
    for (const bucket of resources('eu-central-1', 'AWS::S3::Bucket')) {
      const p = bucket.Properties as Json;
      t.match(
        p,
        { VersioningConfiguration: { Status: 'Enabled' }, BucketEncryption: {} },
        'versioned, encrypted',
      );
    }
    template.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: {} });
  },
);

t.test('Jobs: an ECC P-256 signing key and a presign role limited to releases/', async () => {
  const template = Template.fromJSON(templates.get('eu-central-1') as Json);
  template.hasResourceProperties('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
  template.hasOutput('SigningKeyArn', {});
  template.hasOutput('TemplateName', { Value: 'attache-fleet' });
});

t.test('cdk-nag fails the synthesis on an unacknowledged finding', async (t) => {
  const bad = buildApp(config, { outdir: t.testdir(), regions: 'eu-central-1' });
  // An unencrypted, unlogged bucket without TLS enforcement: AwsSolutions-S1, S10; HIPAA.Security-….
  new s3.Bucket(bad.node.findChild(stackName('eu-central-1')) as Stack, 'Careless');
  // The CDK prints the report on stderr: keep it out of the test output, and read it.
  const printed = t.capture(console, 'error', () => {});
  t.throws(() => bad.synth(), /Validation failed/);
  t.match(JSON.stringify(printed()), /AwsSolutions[\s\S]*HIPAA\.Security/, 'both packs reported the bucket');
});

t.test('the allow-list hook allows listed serials only', async (t) => {
  const list = '# serials shipped in lot 7\n10000000a1b2c3d4\r\n\n10000000DEADBEEF\n';
  t.ok(serialAllowed('10000000a1b2c3d4', list));
  t.ok(serialAllowed('10000000deadbeef', list), 'case-insensitive');
  t.notOk(serialAllowed('10000000ffffffff', list), 'not listed');
  t.notOk(serialAllowed('# serials shipped in lot 7', list), 'a comment is no serial');
  t.notOk(serialAllowed('', list));
  t.notOk(serialAllowed(undefined, list), 'no SerialNumber parameter');
  t.notOk(serialAllowed('a/b', 'a/b'), 'not a valid thing name part');
});

t.test('the regions can come from a gateway config; the allow-list hook is optional', async (t) => {
  const uplink = {
    endpoint: 'abc123-ats.iot.eu-central-1.amazonaws.com',
    routes: [
      { name: 'site-b', endpoint: 'def456-ats.iot.eu-west-1.amazonaws.com' },
      { name: 'site-c', endpoint: 'gw.example.org', allowedRegions: ['eu-north-1'] },
      { name: 'fips', endpoint: 'data.iot-fips.us-east-1.amazonaws.com' },
    ],
  };
  t.same(gatewayRegions({ uplink }), ['eu-central-1', 'eu-west-1', 'eu-north-1', 'us-east-1']);
  t.same(gatewayRegions({ uplink: { allowedRegions: ['eu-west-3'] } }), ['eu-west-3']);
  t.throws(() => gatewayRegions({ uplink: { endpoint: 'broker.local' } }), TypeError);
  const dir = t.testdir();
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ uplink: { endpoint: uplink.endpoint, routes: [uplink.routes[0]] } }));
  const app = buildApp(
    { ...config, serialAllowList: false },
    { gatewayConfig: file, outdir: join(dir, 'cdk.out') },
  );
  t.same(
    app.node.children.filter((c) => c instanceof Stack).map((s) => (s as Stack).region),
    ['eu-central-1', 'eu-west-1'],
    'one stack per region the gateway sends to',
  );
  const template = Template.fromStack(app.node.findChild(stackName('eu-west-1')) as Stack);
  template.resourceCountIs('AWS::Lambda::Function', 0);
  template.hasOutput('AllowList', { Value: 'none' });
  t.notOk(
    (template.findResources('AWS::IoT::ProvisioningTemplate') as Record<string, { Properties: Json }>)[
      Object.keys(template.findResources('AWS::IoT::ProvisioningTemplate'))[0] as string
    ]?.Properties.PreProvisioningHook,
    'without the allow-list, no hook',
  );
  t.throws(() => buildApp(config, { regions: 'mars-1' }), /not an AWS region/);
});

t.test(
  'files up: a role alias whose role writes only under its own thing, reads nothing, with KMS',
  async (t) => {
    const template = Template.fromJSON(templates.get('eu-central-1') as Json);
    template.hasResourceProperties('AWS::IoT::RoleAlias', {
      RoleAlias: 'attache-files-up',
      CredentialDurationSeconds: 3600,
    });
    template.hasOutput('FilesRoleAlias', { Value: 'attache-files-up' });
    template.hasOutput('FilesBucket', {});
    const roles = resources('eu-central-1', 'AWS::IAM::Role').filter((r) =>
      JSON.stringify(r.Properties).includes('credentials.iot.amazonaws.com'),
    );
    t.equal(roles.length, 1, 'one role trusts the credentials provider');
    const policies = resources('eu-central-1', 'AWS::IAM::ManagedPolicy').filter((p) =>
      JSON.stringify(p.Properties).includes('credentials-iot:ThingName'),
    );
    t.equal(policies.length, 1);
    const properties = (policies[0] as Json).Properties as Json;
    const statements = resolve(properties.PolicyDocument, 'eu-central-1') as {
      Statement: { Action: string | string[]; Resource: unknown }[];
    };
    const actions = statements.Statement.flatMap((s) => s.Action);
    t.same(actions.sort(), ['kms:Decrypt', 'kms:GenerateDataKey', 's3:PutObject']);
    t.notOk(
      actions.some((a) => /Get|List/.test(a)),
      'reads nothing',
    );
    const s3Statement = statements.Statement.find((s) => JSON.stringify(s.Action).includes('s3:PutObject'));
    t.match(
      JSON.stringify(s3Statement?.Resource),
      /\/\$\{credentials-iot:ThingName\}\/\*"/,
      'only under its own thing',
    );
    const bucketPolicies = resources('eu-central-1', 'AWS::S3::BucketPolicy');
    t.ok(
      bucketPolicies.some((p) =>
        JSON.stringify(p.Properties).includes('"s3:x-amz-server-side-encryption":"aws:kms"'),
      ),
      'the files bucket refuses writes without SSE-KMS',
    );
    t.ok(
      resources('eu-central-1', 'AWS::S3::Bucket').some((b) =>
        JSON.stringify(b.Properties).includes('"AbortIncompleteMultipartUpload":{"DaysAfterInitiation":30}'),
      ),
      'incomplete uploads are aborted after 30 days',
    );
  },
);
