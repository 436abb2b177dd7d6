/**
 * Whether `serial` may be provisioned: it is a plausible serial (1-100 characters of
 * `[A-Za-z0-9_-]`, so that `attache-<serial>` is a valid thing name) and a line of `allowList`
 * (one serial a line; blank lines and lines starting with `#` ignored; case-insensitive).
 * Self-contained: its source is inlined into the Lambda function.
 */
export function serialAllowed(serial: unknown, allowList: string): boolean {
  if (typeof serial !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(serial)) return false;
  const wanted = serial.toLowerCase();
  return allowList.split(/\r?\n/).some((line) => {
    const entry = line.trim().toLowerCase();
    return entry !== '' && !entry.startsWith('#') && entry === wanted;
  });
}

/**
 * The pre-provisioning hook's Lambda code (Node.js, CommonJS; the runtime ships the AWS SDK v3).
 * AWS IoT calls it during RegisterThing with the template parameters; it answers
 * `{allowProvisioning}`. Any failure (no allow-list, S3 refused) refuses: a box is never
 * provisioned by accident.
 */
export const allowListHookCode = `
const { S3Client, GetObjectCommand } = require('@aws-sdk/client-s3');
const s3 = new S3Client({});
const serialAllowed = ${serialAllowed.toString()};
exports.handler = async (event) => {
  const serial = event && event.parameters ? event.parameters.SerialNumber : undefined;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: process.env.ALLOW_LIST_BUCKET, Key: process.env.ALLOW_LIST_KEY }));
    const allowProvisioning = serialAllowed(serial, await object.Body.transformToString());
    console.log(JSON.stringify({ serial: String(serial).slice(0, 100), allowProvisioning }));
    return { allowProvisioning };
  } catch (err) {
    console.error(JSON.stringify({ msg: 'allow-list unreadable', error: String(err && err.name) }));
    return { allowProvisioning: false };
  }
};
`;
