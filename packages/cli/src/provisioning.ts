import { readFile } from 'node:fs/promises';
import type { AttacheConfig } from '@attache/core';
import { type FleetProvisioningState, readFleetProvisioning } from '@attache/uplink/policy';
import { provisioningDir } from './paths.js';

/**
 * The appliance's first-boot provisioning result, as `attache-provision` writes it
 * (image-build/README.md, "State file").
 */
export interface ProvisioningState {
  state: 'provisioned' | 'failed' | 'unprovisioned' | 'unreadable';
  /** The box's clock when it was written, which may not have been synchronized yet. */
  at: string | null;
  message: string;
  gatewayId: string | null;
  credential: 'device' | 'claim' | null;
  /** The device (or claim) certificate moved to the data partition. */
  certificate: { subject: string; notAfter: string; sha256: string } | null;
  /** One line per problem of a bundle that was refused. */
  errors: string[];
}

/** Where the appliance keeps the state file; `$ATTACHE_PROVISIONING_FILE` names another. */
export const defaultProvisioningFile = '/var/lib/attache/provisioning.json';

/** A certificate this close to its end is reported as expiring, so it is renewed in time. */
const expiryWarningMs = 30 * 86_400_000;

/** The state file's path for this environment. */
export function provisioningFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.ATTACHE_PROVISIONING_FILE ?? defaultProvisioningFile;
}

/**
 * Reads the state file. Resolves null when there is none (not an appliance: a laptop, a test box);
 * a file that is not the expected JSON resolves as state `unreadable`, never throws.
 */
export async function readProvisioning(path: string): Promise<ProvisioningState | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return unreadable(`${path} cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<ProvisioningState>;
    if (!['provisioned', 'failed', 'unprovisioned'].includes(String(parsed.state))) {
      return unreadable(`${path} names no known state`);
    }
    return {
      state: parsed.state as ProvisioningState['state'],
      at: typeof parsed.at === 'string' ? parsed.at : null,
      message: typeof parsed.message === 'string' ? parsed.message : '',
      gatewayId: parsed.gatewayId ?? null,
      credential: parsed.credential ?? null,
      certificate: parsed.certificate ?? null,
      errors: Array.isArray(parsed.errors) ? parsed.errors.map(String) : [],
    };
  } catch {
    return unreadable(`${path} is not valid JSON`);
  }
}

function unreadable(message: string): ProvisioningState {
  return {
    state: 'unreadable',
    at: null,
    message,
    gatewayId: null,
    credential: null,
    certificate: null,
    errors: [],
  };
}

function certificateLine(cert: NonNullable<ProvisioningState['certificate']>, now: number): string {
  const end = Date.parse(cert.notAfter);
  let when = `valid until ${cert.notAfter}`;
  if (Number.isNaN(end)) when = `end date unreadable (${cert.notAfter})`;
  else if (end <= now) when = `EXPIRED on ${cert.notAfter}: the uplink cannot connect; provision a new one`;
  else if (end - now < expiryWarningMs) {
    when = `EXPIRES in ${Math.ceil((end - now) / 86_400_000)} d (${cert.notAfter}): renew it`;
  }
  return `  certificate ${cert.subject}, ${when}`;
}

/** The lines `attache status` prints about provisioning. */
export function formatProvisioning(p: ProvisioningState, now = Date.now()): string[] {
  const at = p.at ? ` at ${p.at}` : '';
  switch (p.state) {
    case 'provisioned': {
      const lines = [`provisioning: provisioned${at} (${p.credential ?? 'device'} certificate)`];
      // A claim serves only until the box has its own certificate (the fleet provisioning line).
      if (p.certificate && p.credential === 'claim') {
        lines.push(`  claim ${p.certificate.subject}, used only until the box has provisioned itself`);
      } else if (p.certificate) lines.push(certificateLine(p.certificate, now));
      return lines;
    }
    case 'failed':
      return [
        `provisioning: FAILED${at}: the bundle stays on the boot partition (attache/RESULT.txt)`,
        ...p.errors.map((e) => `  ${e}`),
      ];
    case 'unprovisioned':
      return [`provisioning: NOT PROVISIONED: ${p.message}`];
    default:
      return [`provisioning: state unknown: ${p.message}`];
  }
}

/** The box's provisioning by claim (`uplink.provisioning`), as `attache status` reports it. */
export type ClaimStatus = FleetProvisioningState | { state: 'unprovisioned'; templateName: string };

/** Reads the claim provisioning progress of `config`; undefined when it does not provision by claim. */
export async function readClaimStatus(config: AttacheConfig): Promise<ClaimStatus | undefined> {
  const provisioning = config.uplink?.provisioning;
  if (!provisioning) return undefined;
  return (
    (await readFleetProvisioning(provisioningDir(config))) ?? {
      state: 'unprovisioned',
      templateName: provisioning.templateName,
    }
  );
}

/** The lines `attache status` prints about the provisioning by claim. */
export function formatClaimStatus(s: ClaimStatus): string[] {
  switch (s.state) {
    case 'unprovisioned':
      return [
        `fleet provisioning: NOT PROVISIONED yet: the next window provisions this box by claim (template ${s.templateName}); readings are cached meanwhile`,
      ];
    case 'provisioning':
      return [
        `fleet provisioning: PROVISIONING since ${s.at} (last step done: ${s.step})`,
        ...(s.reason ? [`  ${s.reason}`] : []),
      ];
    case 'provisioned':
      return [
        `fleet provisioning: provisioned as ${s.thingName ?? '?'} at ${s.at} (certificate ${s.certificateId ?? 'kept'})`,
      ];
    case 'refused':
      return [
        `fleet provisioning: REFUSED at ${s.at}: ${s.reason ?? 'no reason given'}; retried in the next window`,
      ];
  }
}
