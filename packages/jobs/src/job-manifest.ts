import { type KeyObject, sign } from 'node:crypto';
import type { JobDocument } from './generated/job-document.js';
import { rejected } from './job-status-error.js';
import { verifySignature } from './signature.js';

/**
 * What the job author signs: the JSON text in a document's `manifest`, its UTF-8 bytes signed with
 * ECDSA P-256 / SHA-256 (`signature`). It names everything that decides what the job does, so a
 * signature cannot be reused for another operation, version, target or artifact, or after expiry.
 */
export interface JobManifest {
  format: 'attache-job-manifest/1';
  operation: JobDocument['operation'];
  /** software-update: the release version (equal to the document's); otherwise a label of the content. */
  version: string;
  /** The one thing, or one thing group, the job is meant for. */
  target: { thing: string } | { group: string };
  /** The artifact's SHA-256 (hex) and size (bytes): equal to the document's. */
  sha256: string;
  size: number;
  /** RFC 3339: the job is refused from then on. */
  expiresAt: string;
  /** software-update: true allows a version lower than the running one. */
  rollback?: boolean;
  /** config-update: the document's `mode`. */
  mode?: string;
  /** file-delivery: the document's `name` and `deviceId`. */
  name?: string;
  deviceId?: string;
}

/** Where a job must be for: the gateway's thing name, the thing groups it is in, and the time. */
export interface JobAudience {
  thingName: string;
  thingGroups: readonly string[];
  now: () => number;
}

const refused = (reason: string) => rejected('ATTACHE_JOB_REFUSED', reason);

function parse(text: string): JobManifest {
  let value: Partial<JobManifest>;
  try {
    value = JSON.parse(text) as Partial<JobManifest>;
  } catch {
    throw rejected('ATTACHE_MALFORMED', 'the signed manifest is not JSON');
  }
  const target = value?.target as Record<string, unknown> | undefined;
  const ok =
    value?.format === 'attache-job-manifest/1' &&
    typeof value.operation === 'string' &&
    typeof value.version === 'string' &&
    typeof value.sha256 === 'string' &&
    typeof value.size === 'number' &&
    typeof value.expiresAt === 'string' &&
    (value.rollback === undefined || typeof value.rollback === 'boolean') &&
    typeof target === 'object' &&
    target !== null &&
    Object.keys(target).length === 1 &&
    (typeof target.thing === 'string' || typeof target.group === 'string');
  if (!ok) {
    throw rejected(
      'ATTACHE_MALFORMED',
      'the signed manifest lacks format, operation, version, target (thing or group), sha256, size or expiresAt',
    );
  }
  return value as JobManifest;
}

/** The document's fields a manifest must repeat, by operation. */
function signedFields(document: JobDocument): Record<string, unknown> {
  const common = {
    operation: document.operation,
    sha256: document.artifact.sha256,
    size: document.artifact.size,
  };
  switch (document.operation) {
    case 'software-update':
      return { ...common, version: document.version };
    case 'config-update':
      return { ...common, mode: document.mode };
    case 'file-delivery':
      return { ...common, name: document.name, deviceId: document.deviceId };
  }
}

/** The signature of `manifestText` under the provisioned key, then its shape. */
function signedManifest(manifestText: string, signature: string, publicKeyPem: string): JobManifest {
  if (!verifySignature(Buffer.from(manifestText, 'utf8'), signature, publicKeyPem)) {
    throw rejected(
      'ATTACHE_SIGNATURE',
      'bad signature: the job manifest is not signed by the provisioned job-signing key',
    );
  }
  return parse(manifestText);
}

/** That the manifest names this gateway (its thing, or one of its thing groups) and a time still to come. */
function checkAudience(manifest: JobManifest, audience: JobAudience): JobManifest {
  const { target } = manifest;
  if (
    'thing' in target ? target.thing !== audience.thingName : !audience.thingGroups.includes(target.group)
  ) {
    const named = 'thing' in target ? `thing ${target.thing}` : `thing group ${target.group}`;
    throw refused(`the job is signed for ${named}, not for this gateway (${audience.thingName})`);
  }
  const expires = Date.parse(manifest.expiresAt);
  if (Number.isNaN(expires)) throw rejected('ATTACHE_MALFORMED', "the manifest's expiresAt is not a date");
  if (expires <= audience.now()) throw refused(`the job expired at ${manifest.expiresAt}`);
  return manifest;
}

/**
 * Verifies a signed manifest on its own: the signature of `manifestText` under the provisioned key,
 * its shape, that it names this gateway (its thing, or one of its thing groups) and a time still to
 * come. Resolves with the manifest. The root release installer checks a software update with it:
 * it trusts the signed manifest alone, not the document the service hands over. Throws
 * JobStatusError REJECTED: ATTACHE_SIGNATURE (bad signature), ATTACHE_JOB_REFUSED (another target,
 * expired), ATTACHE_MALFORMED (a manifest of the wrong shape).
 */
export function verifySignedManifest(
  manifestText: string,
  signature: string,
  publicKeyPem: string,
  audience: JobAudience,
): JobManifest {
  return checkAudience(signedManifest(manifestText, signature, publicKeyPem), audience);
}

/**
 * Verifies a job document's signed manifest: the signature under the provisioned key, then that
 * the manifest names this document (operation, artifact SHA-256 and size, and the version, mode,
 * name or device), this gateway (its thing, or one of its thing groups) and a time still to come.
 * Resolves with the manifest. Throws JobStatusError REJECTED: ATTACHE_SIGNATURE (bad signature,
 * or the document differs from what was signed), ATTACHE_JOB_REFUSED (another target, expired),
 * ATTACHE_MALFORMED (a manifest of the wrong shape).
 */
export function verifyJobManifest(
  document: JobDocument,
  publicKeyPem: string,
  audience: JobAudience,
): JobManifest {
  const manifest = signedManifest(document.manifest, document.signature, publicKeyPem);
  for (const [field, value] of Object.entries(signedFields(document))) {
    if (manifest[field as keyof JobManifest] !== value) {
      throw rejected(
        'ATTACHE_SIGNATURE',
        `the document's ${field} differs from its signed manifest: the signature is for another job`,
      );
    }
  }
  return checkAudience(manifest, audience);
}

/** A semantic version (what a release's directory may be named). */
export const versionPattern = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * Orders two release versions (semantic versioning: numbers, then a pre-release sorts before its
 * release; build metadata ignored): negative when `a` is older. Unparseable versions compare as
 * strings.
 */
export function compareVersions(a: string, b: string): number {
  const pa = versionPattern.exec(a);
  const pb = versionPattern.exec(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  const [preA, preB] = [pa[4], pb[4]];
  if (preA === preB) return 0;
  if (preA === undefined) return 1;
  if (preB === undefined) return -1;
  const idsA = preA.split('.');
  const idsB = preB.split('.');
  for (let i = 0; i < Math.max(idsA.length, idsB.length); i++) {
    const [x, y] = [idsA[i], idsB[i]];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const numeric = /^\d+$/.test(x) && /^\d+$/.test(y);
    const d = numeric ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
    if (d !== 0) return d;
  }
  return 0;
}

/** A job document before signing: everything but `manifest` and `signature`. */
export type UnsignedJobDocument = JobDocument extends infer D
  ? D extends JobDocument
    ? Omit<D, 'manifest' | 'signature'>
    : never
  : never;

/** What {@link signJobDocument} puts in the manifest beside the document's own fields. */
export interface SignJobOptions {
  target: { thing: string } | { group: string };
  /** From then on the job is refused. */
  expiresAt: Date;
  /** software-update: allow a version lower than the one running. */
  rollback?: boolean;
  /** config-update and file-delivery: a label of the content (default: the first 12 hex digits of its SHA-256). */
  version?: string;
}

/**
 * The job author's side: builds the manifest of `document` (its operation, version, artifact
 * SHA-256 and size, mode, name and device, plus `target`, `expiresAt` and `rollback`) and signs its
 * UTF-8 bytes with `privateKey` (EC P-256, ECDSA / SHA-256, DER). Returns the document to create
 * the AWS IoT job with (`schemaVersion` 2). Used by `scripts/sign-job.mjs` and by the tests.
 */
export function signJobDocument(
  document: UnsignedJobDocument,
  privateKey: KeyObject | string,
  options: SignJobOptions,
): JobDocument {
  const doc = { ...document, schemaVersion: 2 } as JobDocument;
  const own = signedFields(doc);
  const manifest: JobManifest = {
    format: 'attache-job-manifest/1',
    operation: doc.operation,
    version:
      doc.operation === 'software-update'
        ? doc.version
        : (options.version ?? doc.artifact.sha256.slice(0, 12)),
    target: options.target,
    sha256: doc.artifact.sha256,
    size: doc.artifact.size,
    expiresAt: options.expiresAt.toISOString(),
    ...(options.rollback === undefined ? {} : { rollback: options.rollback }),
    ...(own.mode === undefined ? {} : { mode: own.mode as string }),
    ...(own.name === undefined ? {} : { name: own.name as string }),
    ...(own.deviceId === undefined ? {} : { deviceId: own.deviceId as string }),
  };
  const text = JSON.stringify(manifest);
  const signature = sign('sha256', Buffer.from(text, 'utf8'), privateKey).toString('base64');
  return { ...doc, manifest: text, signature };
}
