import { CfnOutput, Duration, type Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';

import { names } from './names.js';
import { serviceRole } from './parts.js';

/** How long S3 keeps the parts of a multipart upload a gateway never completed (then it starts the file again). */
const incompleteUploadDays = 30;

/**
 * Files up: the role a gateway gets through the AWS IoT credentials provider (role alias
 * `attache-files-up`, assumed by `credentials.iot.amazonaws.com` for a certificate whose IoT policy
 * allows `iot:AssumeRoleWithCertificate` on it), allowed to write objects only under its own thing's
 * prefix (`${credentials-iot:ThingName}/`) of `bucket`, with the data key, and to read nothing. The
 * bucket refuses writes without SSE-KMS and aborts multipart uploads left incomplete for 30 days.
 */
export function filesUp(stack: Stack, bucket: s3.Bucket, key: kms.Key, bucketLogicalId: string): void {
  bucket.addLifecycleRule({ abortIncompleteMultipartUploadAfter: Duration.days(incompleteUploadDays) });
  bucket.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'DenyUnencryptedFileUploads',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects('*')],
      conditions: { StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' } },
    }),
  );
  // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, not JavaScript
  const ownPrefix = bucket.arnForObjects('${credentials-iot:ThingName}/*');
  const role = serviceRole(
    stack,
    'FilesUpRole',
    'credentials.iot',
    'Attaché files up: a gateway writes its device files under its own thing prefix, and reads nothing',
    [
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [ownPrefix],
      }),
      // SSE-KMS: PutObject needs GenerateDataKey; a multipart upload also Decrypt (to complete it).
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
    ],
    {
      // cdk-nag writes the policy variable `${credentials-iot:ThingName}` as `<credentials-iot:ThingName>`.
      [`<${bucketLogicalId}.Arn>/<credentials-iot:ThingName>/*`]:
        "each gateway's own prefix: new objects per file (thing, device, date, SHA-256), so keys are not known in advance",
    },
  );
  const alias = new iot.CfnRoleAlias(stack, 'FilesUpRoleAlias', {
    roleAlias: names.filesRoleAlias,
    roleArn: role.roleArn,
    credentialDurationSeconds: 3600,
  });
  new CfnOutput(stack, 'FilesBucketOutput', { key: 'FilesBucket', value: bucket.bucketName });
  new CfnOutput(stack, 'FilesRoleAliasOutput', { key: 'FilesRoleAlias', value: alias.roleAlias as string });
}
