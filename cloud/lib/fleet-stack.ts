import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

import { filesUp } from './files-up.js';
import { names } from './names.js';
import { accept, residencyReason, serviceRole } from './parts.js';
import { type FleetPolicies, withArns } from './policies.js';
import { fleetProvisioning } from './provisioning.js';

export { names } from './names.js';

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
        'Attaché: encrypts the ingest, artifact and files buckets, the error queue and the hook logs',
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
    const files = bucket('FilesBucket');
    for (const b of [ingest, artifacts, files]) {
      accept(b, 'HIPAA.Security-S3BucketReplicationEnabled', residencyReason);
    }
    filesUp(this, files, dataKey, this.#logicalId(files));
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
    const template = fleetProvisioning(this, { ...props, artifacts, key: dataKey, gatewayPolicy });
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
    const role = serviceRole(
      this,
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
    const presign = serviceRole(
      this,
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
}
