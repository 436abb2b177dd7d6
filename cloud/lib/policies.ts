import { readFileSync } from 'node:fs';

import { Aws } from 'aws-cdk-lib';

/** An IAM-style policy statement of an AWS IoT policy, as written in `policies/iot-policies.json`. */
export interface IotPolicyStatement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string>>;
}

/** An AWS IoT policy document. */
export interface IotPolicyDocument {
  Version: string;
  Statement: IotPolicyStatement[];
}

/** The fleet's IoT policies: the provisioned gateway's and the shared claim's. */
export interface FleetPolicies {
  gateway: IotPolicyDocument;
  claim: IotPolicyDocument;
}

/** Where the policies live: the single source of truth for the CDK app and the test broker's ACL. */
export const policiesFile = new URL('../policies/iot-policies.json', import.meta.url);

/** Reads `policies/iot-policies.json`. */
export function loadPolicies(): FleetPolicies {
  const { gateway, claim } = JSON.parse(readFileSync(policiesFile, 'utf8')) as FleetPolicies;
  return { gateway, claim };
}

/**
 * `document` with every relative resource (`topic/…`, `client/…`) made an ARN of this stack's
 * partition, region and account, and `{templateName}` filled in. The ARN prefix is made of tokens,
 * so CloudFormation resolves it (an `Fn::Join`); the policy variables stay literal.
 */
export function withArns(document: IotPolicyDocument, templateName: string): IotPolicyDocument {
  const prefix = `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:`;
  return {
    Version: document.Version,
    Statement: document.Statement.map((statement) => ({
      ...statement,
      Resource: statement.Resource.map((r) => prefix + r.replaceAll('{templateName}', templateName)),
    })),
  };
}
