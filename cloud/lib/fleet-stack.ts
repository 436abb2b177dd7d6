import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

import { type FleetPolicies, withArns } from './policies.js';
import { allowListHookCode } from './provisioning-hook.js';

/** What one region's stack is made of (see `cloud/fleet.json`). */
export interface FleetStackProps extends StackProps {
  /** The IoT policies (from `policies/iot-policies.json`). */
  policies: FleetPolicies;
  /** The fleet provisioning template's name, e.g. `attache-fleet`. */
  templateName: string;
  /** The thing group every provisioned gateway joins, e.g. `attache-gateways`. */
  thingGroup: string;
  /** Whether RegisterThing runs the pre-provisioning hook that checks the serial against the allow-list. */
  serialAllowList: boolean;
}

/** The names a box's bundle and the maker's scripts need; fixed so that they are the same in every region. */
export const names = {
  gatewayPolicy: 'attache-gateway',
  claimPolicy: 'attache-claim',
  /** The IoT rule; also the Basic Ingest rule name in the gateway policy (`$aws/rules/attache_ingest/…`). */
  ingestRule: 'attache_ingest',
  /** The maker's serial allow-list, one serial a line, in the artifact bucket. */
  allowListKey: 'provisioning/serial-allow-list.txt',
} as const;

/** Acknowledges a cdk-nag finding on `scope`, with the reason it does not apply. */
function accept(scope: Construct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/**
 * The AWS side of one region: IoT policies, fleet provisioning (template, thing group, optional
 * allow-list hook), the ingest rule into an S3 bucket with an SQS error queue, and the Jobs
 * artifact bucket and signing key. Nothing in it replicates or sends data to another region.
 */
export class FleetStack extends Stack {
  constructor(scope: Construct, id: string, props: FleetStackProps) {
    super(scope, id, props);
    const dataKey = new kms.Key(this, 'DataKey', {
      description:
        'Attaché: encrypts the ingest bucket, the artifact bucket, the error queue and the hook logs',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const accessLogs = this.#accessLogsBucket();
    const bucket = (id: string) =>
      new s3.Bucket(this, id, {
        encryption: s3.BucketEncryption.KMS,
        encryptionKey: dataKey,
        bucketKeyEnabled: true,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        versioned: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        serverAccessLogsBucket: accessLogs,
        serverAccessLogsPrefix: `${id}/`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    const ingest = bucket('IngestBucket');
    const artifacts = bucket('ArtifactBucket');
    for (const b of [ingest, artifacts]) {
      accept(b, 'HIPAA.Security-S3BucketReplicationEnabled', residencyReason);
    }
    this.#ingestRule(ingest, dataKey);
    const signingKey = this.#jobs(artifacts, dataKey);
    const gatewayPolicy = new iot.CfnPolicy(this, 'GatewayPolicy', {
      policyName: names.gatewayPolicy,
      policyDocument: withArns(props.policies.gateway, props.templateName),
    });
    const claimPolicy = new iot.CfnPolicy(this, 'ClaimPolicy', {
      policyName: names.claimPolicy,
      policyDocument: withArns(props.policies.claim, props.templateName),
    });
    const group = new iot.CfnThingGroup(this, 'Gateways', {
      thingGroupName: props.thingGroup,
      thingGroupProperties: { thingGroupDescription: 'Attaché gateways provisioned by claim' },
    });
    const template = this.#template(props, artifacts, dataKey, gatewayPolicy);
    template.addResourceDependency(group);
    const outputs: Record<string, string> = {
      Region: this.region,
      TemplateName: props.templateName,
      ThingGroup: props.thingGroup,
      GatewayPolicy: gatewayPolicy.ref,
      ClaimPolicy: claimPolicy.ref,
      IngestBucket: ingest.bucketName,
      ArtifactBucket: artifacts.bucketName,
      AllowList: props.serialAllowList ? `s3://${artifacts.bucketName}/${names.allowListKey}` : 'none',
      SigningKeyArn: signingKey.keyArn,
    };
    for (const [key, value] of Object.entries(outputs)) new CfnOutput(this, `${key}Output`, { key, value });
  }

  /**
   * A role for `service` with exactly `statements`, in a customer-managed policy (HIPAA: no inline
   * policies), so that nothing (a CDK grant) adds to it unseen.
   */
  #role(
    id: string,
    service: 'iot' | 'lambda',
    description: string,
    statements: iam.PolicyStatement[],
    wildcards: Record<string, string> = {},
  ): iam.Role {
    const policy = new iam.ManagedPolicy(this, `${id}Policy`, { description, statements });
    for (const [resource, reason] of Object.entries(wildcards)) {
      accept(policy, `AwsSolutions-IAM5[Resource::${resource}]`, reason);
    }
    return new iam.Role(this, id, {
      assumedBy: new iam.ServicePrincipal(`${service}.amazonaws.com`),
      description,
      managedPolicies: [policy],
    });
  }

  #logicalId(bucket: s3.Bucket): string {
    return this.getLogicalId(bucket.node.defaultChild as s3.CfnBucket);
  }

  #accessLogsBucket(): s3.Bucket {
    const logs = new s3.Bucket(this, 'AccessLogs', {
      // S3 server access logs can only be delivered to a bucket encrypted with S3-managed keys.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      lifecycleRules: [{ expiration: Duration.days(400), noncurrentVersionExpiration: Duration.days(30) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const why =
      'this bucket receives the other buckets\u2019 S3 server access logs; logging it would log itself';
    accept(logs, 'AwsSolutions-S1', why);
    accept(logs, 'HIPAA.Security-S3BucketLoggingEnabled', why);
    accept(
      logs,
      'HIPAA.Security-S3DefaultEncryptionKMS',
      'S3 server access logging only delivers to buckets with SSE-S3 (AES-256), not SSE-KMS',
    );
    accept(logs, 'HIPAA.Security-S3BucketReplicationEnabled', residencyReason);
    return logs;
  }

  /** Telemetry, events and state of every gateway into `bucket`; what fails goes to an SQS queue. */
  #ingestRule(bucket: s3.Bucket, key: kms.Key): void {
    const errors = new sqs.Queue(this, 'IngestErrors', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    accept(
      errors,
      'AwsSolutions-SQS3',
      'this queue is itself the dead-letter store of the ingest rule (its error action); operators redrive from it',
    );
    const role = this.#role(
      'IngestRole',
      'iot',
      'The ingest IoT rule writes messages to the ingest bucket and failures to the error queue',
      [
        new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects('*')] }),
        new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [errors.queueArn] }),
        new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
      ],
      {
        [`<${this.#logicalId(bucket)}.Arn>/*`]:
          'the rule writes a new object per message (key from topic, date and a UUID): object keys are not known in advance',
      },
    );
    new iot.CfnTopicRule(this, 'IngestRule', {
      ruleName: names.ingestRule,
      topicRulePayload: {
        description: 'Attaché telemetry, events and state: one S3 object per message',
        awsIotSqlVersion: '2016-03-23',
        sql: "SELECT * FROM 'dt/attache/+/+'",
        ruleDisabled: false,
        actions: [
          {
            s3: {
              bucketName: bucket.bucketName,
              // <type>/<thing>/<UTC date>/<uuid>.json: one prefix per message type and gateway for readers.
              // biome-ignore lint/suspicious/noTemplateCurlyInString: an AWS IoT substitution template, not JavaScript
              key: "${topic(4)}/${topic(3)}/${parse_time('yyyy/MM/dd', timestamp(), 'UTC')}/${newuuid()}.json",
              roleArn: role.roleArn,
            },
          },
        ],
        errorAction: { sqs: { queueUrl: errors.queueUrl, roleArn: role.roleArn, useBase64: false } },
      },
    });
  }

  /** The Jobs signing key and the role AWS IoT Jobs uses to presign artifact URLs. */
  #jobs(artifacts: s3.Bucket, key: kms.Key): kms.Key {
    const signingKey = new kms.Key(this, 'JobsSigningKey', {
      description:
        'Attaché: signs job documents and release artifacts (ECDSA P-256); boxes hold the public key',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const presign = this.#role(
      'JobsPresignRole',
      'iot',
      'AWS IoT Jobs presigns artifact download URLs with this role',
      [
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [artifacts.arnForObjects('releases/*')],
        }),
        new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }),
      ],
      {
        [`<${this.#logicalId(artifacts)}.Arn>/releases/*`]:
          'a job may name any artifact the maker uploaded under releases/; the signature, not the URL, authenticates it',
      },
    );
    new CfnOutput(this, 'JobsPresignRoleArnOutput', { key: 'JobsPresignRoleArn', value: presign.roleArn });
    return signingKey;
  }

  #template(
    props: FleetStackProps,
    artifacts: s3.Bucket,
    key: kms.Key,
    gatewayPolicy: iot.CfnPolicy,
  ): iot.CfnProvisioningTemplate {
    const role = new iam.Role(this, 'ProvisioningRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com'),
      description:
        'Fleet provisioning creates the thing, activates its certificate and attaches the gateway policy',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSIoTThingsRegistration')],
    });
    accept(
      role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTThingsRegistration]',
      'AWS\u2019s documented policy for a provisioning role; thing names are made at registration, so it cannot be narrowed to known resources',
    );
    const body = {
      Parameters: {
        SerialNumber: { Type: 'String' },
        'AWS::IoT::Certificate::Id': { Type: 'String' },
      },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          OverrideSettings: { AttributePayload: 'MERGE', ThingGroups: 'DO_NOTHING' },
          Properties: {
            ThingName: { 'Fn::Join': ['', ['attache-', { Ref: 'SerialNumber' }]] },
            AttributePayload: { serial: { Ref: 'SerialNumber' } },
            ThingGroups: [props.thingGroup],
          },
        },
        certificate: {
          Type: 'AWS::IoT::Certificate',
          Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
        },
        policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: names.gatewayPolicy } },
      },
    };
    const template = new iot.CfnProvisioningTemplate(this, 'ProvisioningTemplate', {
      templateName: props.templateName,
      description:
        'Attaché: a box with the fleet claim becomes thing attache-<serial> with the gateway policy',
      enabled: true,
      provisioningRoleArn: role.roleArn,
      templateBody: JSON.stringify(body),
      preProvisioningHook: props.serialAllowList
        ? { targetArn: this.#allowListHook(artifacts, key).functionArn, payloadVersion: '2020-04-01' }
        : undefined,
    });
    template.addResourceDependency(gatewayPolicy);
    return template;
  }

  /** The pre-provisioning hook: RegisterThing is refused unless the serial is in the maker's allow-list. */
  #allowListHook(artifacts: s3.Bucket, key: kms.Key): lambda.Function {
    const logGroup = new logs.LogGroup(this, 'AllowListHookLogs', {
      encryptionKey: key,
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const role = this.#role(
      'AllowListHookRole',
      'lambda',
      'The allow-list hook reads the allow-list object and writes its log group',
      [
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroup.logGroupArn],
        }),
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [artifacts.arnForObjects(names.allowListKey)],
        }),
        new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }),
      ],
    );
    const hook = new lambda.Function(this, 'AllowListHook', {
      description: 'Attaché pre-provisioning hook: allows RegisterThing only for serials in the allow-list',
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(allowListHookCode),
      role,
      logGroup,
      timeout: Duration.seconds(5),
      memorySize: 256,
      reservedConcurrentExecutions: 10,
      environment: { ALLOW_LIST_BUCKET: artifacts.bucketName, ALLOW_LIST_KEY: names.allowListKey },
    });
    hook.addPermission('InvokedByIot', {
      principal: new iam.ServicePrincipal('iot.amazonaws.com'),
      sourceAccount: this.account,
    });
    accept(
      hook,
      'HIPAA.Security-LambdaDLQ',
      'AWS IoT invokes the hook synchronously during RegisterThing; a DLQ only serves asynchronous invocations',
    );
    accept(
      hook,
      'HIPAA.Security-LambdaInsideVPC',
      'the hook handles no patient data (only a device serial) and reaches only S3; a VPC would add NAT or endpoints for nothing',
    );
    return hook;
  }
}

const residencyReason =
  'data residency: objects must stay in this region; each allowed region has its own stack, and versioning protects against loss';
