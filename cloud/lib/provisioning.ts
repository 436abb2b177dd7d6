import { Duration, RemovalPolicy, type Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';

import { names } from './names.js';
import { accept, serviceRole } from './parts.js';
import { allowListHookCode } from './provisioning-hook.js';

/** What {@link fleetProvisioning} needs from its stack. */
export interface ProvisioningProps {
  templateName: string;
  thingGroup: string;
  serialAllowList: boolean;
  /** Holds the allow-list object. */
  artifacts: s3.Bucket;
  /** Decrypts the allow-list; encrypts the hook's logs. */
  key: kms.Key;
  gatewayPolicy: iot.CfnPolicy;
}

/**
 * The fleet provisioning template: `RegisterThing` creates thing `attache-<SerialNumber>` in the
 * thing group, activates the certificate and attaches the gateway policy; with `serialAllowList`,
 * a pre-provisioning hook refuses serials missing from the maker's allow-list.
 */
export function fleetProvisioning(stack: Stack, props: ProvisioningProps): iot.CfnProvisioningTemplate {
  const { artifacts, key, gatewayPolicy } = props;
  const role = new iam.Role(stack, 'ProvisioningRole', {
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
  const template = new iot.CfnProvisioningTemplate(stack, 'ProvisioningTemplate', {
    templateName: props.templateName,
    description: 'Attaché: a box with the fleet claim becomes thing attache-<serial> with the gateway policy',
    enabled: true,
    provisioningRoleArn: role.roleArn,
    templateBody: JSON.stringify(body),
    preProvisioningHook: props.serialAllowList
      ? { targetArn: allowListHook(stack, artifacts, key).functionArn, payloadVersion: '2020-04-01' }
      : undefined,
  });
  template.addResourceDependency(gatewayPolicy);
  return template;
}

/** The pre-provisioning hook: RegisterThing is refused unless the serial is in the maker's allow-list. */
function allowListHook(stack: Stack, artifacts: s3.Bucket, key: kms.Key): lambda.Function {
  const logGroup = new logs.LogGroup(stack, 'AllowListHookLogs', {
    encryptionKey: key,
    retention: logs.RetentionDays.ONE_YEAR,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  const role = serviceRole(
    stack,
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
  const hook = new lambda.Function(stack, 'AllowListHook', {
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
    sourceAccount: stack.account,
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
