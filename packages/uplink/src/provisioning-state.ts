import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The box's fleet-provisioning progress, as `<stateDir>/state.json` holds it. No file: not
 * provisioned (nothing tried yet).
 */
export interface FleetProvisioningState {
  /** `provisioning`: started, not finished (retried in the next window); `refused`: the cloud said no. */
  state: 'provisioning' | 'provisioned' | 'refused';
  /** The last step done: `key` made, `certificate` issued, thing `registered`. */
  step: 'started' | 'key' | 'certificate' | 'registered';
  /** The box's clock when it was written. */
  at: string;
  thingName: string | null;
  certificateId: string | null;
  /** Why it is not provisioned: the cloud's refusal (`errorCode (statusCode): errorMessage`) or the last failure. */
  reason: string | null;
}

/** The JSON in `path`, or undefined when it is missing or not JSON. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The state file, or null when the box never started provisioning (or the file is unreadable). */
export async function readFleetProvisioning(stateDir: string): Promise<FleetProvisioningState | null> {
  return (await readJson<FleetProvisioningState>(join(stateDir, 'state.json'))) ?? null;
}
