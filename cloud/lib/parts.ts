import type { Stack } from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';

/** Acknowledges a cdk-nag finding on `scope`, with the reason it does not apply. */
export function accept(scope: Construct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** Why no bucket is replicated (HIPAA.Security-S3BucketReplicationEnabled). */
export const residencyReason =
  'data residency: objects must stay in this region; each allowed region has its own stack, and versioning protects against loss';

/**
 * A role for `service` with exactly `statements`, in a customer-managed policy (HIPAA: no inline
 * policies), so that nothing (a CDK grant) adds to it unseen. `wildcards` acknowledges
 * AwsSolutions-IAM5 for each resource named, with its reason.
 */
export function serviceRole(
  stack: Stack,
  id: string,
  service: 'iot' | 'lambda' | 'credentials.iot',
  description: string,
  statements: iam.PolicyStatement[],
  wildcards: Record<string, string> = {},
): iam.Role {
  const policy = new iam.ManagedPolicy(stack, `${id}Policy`, { description, statements });
  for (const [resource, reason] of Object.entries(wildcards)) {
    accept(policy, `AwsSolutions-IAM5[Resource::${resource}]`, reason);
  }
  return new iam.Role(stack, id, {
    assumedBy: new iam.ServicePrincipal(`${service}.amazonaws.com`),
    description,
    managedPolicies: [policy],
  });
}
