import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AttacheConfig, isGatewayError, validateConfig, writeDurably } from '@attache/core';
import { type JsonObject, parseSlot, type SettingsOutcome } from '@attache/uplink/policy';

/** The settings the cloud may change through the shadow, as `section.key` paths. */
const remotelySettable = [
  'window.schedules',
  'window.everySeconds',
  'window.maxDurationSeconds',
  'window.maxBytes',
  'log.level',
] as const;

type Leaf = { section: string; key: string; value: unknown };

/** What is persisted in the data directory. */
interface Persisted {
  desiredVersion?: number;
  applied: JsonObject;
}

function leaves(desired: JsonObject): Leaf[] {
  const out: Leaf[] = [];
  for (const [section, body] of Object.entries(desired)) {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      out.push({ section, key: '', value: body });
      continue;
    }
    for (const [key, value] of Object.entries(body as JsonObject)) out.push({ section, key, value });
  }
  return out;
}

/** `config` with `applied` (`{ window: {...}, log: {...} }`) laid over it; not validated. */
function overlay(config: AttacheConfig, applied: JsonObject): unknown {
  const copy = structuredClone(config) as unknown as { uplink?: { window: JsonObject }; log: JsonObject };
  const window = applied.window as JsonObject | undefined;
  if (window && copy.uplink) Object.assign(copy.uplink.window, window);
  Object.assign(copy.log, (applied.log as JsonObject | undefined) ?? {});
  return copy;
}

/**
 * The settings applied from the Device Shadow: validated like local config (validateConfig on the
 * merged config), persisted in `<dataDir>/remote-settings.json`, laid over the local config at the
 * next start too.
 */
export class RemoteSettings {
  readonly #path: string;
  #state: Persisted = { applied: {} };

  constructor(dataDir: string) {
    this.#path = join(dataDir, 'remote-settings.json');
  }

  /** Loads the persisted settings (none when the file is missing or unreadable). */
  async load(): Promise<void> {
    try {
      this.#state = JSON.parse(await readFile(this.#path, 'utf8')) as Persisted;
    } catch {
      this.#state = { applied: {} };
    }
  }

  /** The settings in force, as last reported. */
  get applied(): JsonObject {
    return this.#state.applied;
  }

  /** `local` with the persisted settings laid over it, validated; `local` itself if that fails. */
  effective(local: AttacheConfig): AttacheConfig {
    try {
      return validateConfig(overlay(local, this.#state.applied));
    } catch {
      return local;
    }
  }

  /**
   * Applies each allowed leaf of `desired` that keeps the merged config valid; refuses the others
   * with the validator's message. Persists what was applied. Resolves the outcome and the new
   * effective config.
   */
  async apply(
    local: AttacheConfig,
    desired: JsonObject,
    version: number,
  ): Promise<{ outcome: SettingsOutcome; config: AttacheConfig }> {
    const applied = structuredClone(this.#state.applied);
    const refused: SettingsOutcome['refused'] = [];
    for (const leaf of leaves(desired)) {
      const path = `/${leaf.section}/${leaf.key}`;
      if (!(remotelySettable as readonly string[]).includes(`${leaf.section}.${leaf.key}`)) {
        refused.push({ path, message: 'not remotely settable' });
        continue;
      }
      if (leaf.section === 'window' && !local.uplink) {
        refused.push({ path, message: 'the gateway has no uplink section' });
        continue;
      }
      const trial = {
        ...applied,
        [leaf.section]: { ...(applied[leaf.section] as JsonObject), [leaf.key]: leaf.value },
      };
      const problem = checkLeaf(local, trial, leaf);
      if (problem) refused.push({ path, message: problem });
      else Object.assign(applied, trial);
    }
    this.#state = { desiredVersion: version, applied };
    // fsynced, renamed, directory fsynced: a power cut keeps the old settings or the new, never none.
    await writeDurably(this.#path, JSON.stringify(this.#state, null, 2));
    return { outcome: { applied, refused, desiredVersion: version }, config: this.effective(local) };
  }
}

/** The reason `leaf` cannot be applied, or null. */
function checkLeaf(local: AttacheConfig, trial: JsonObject, leaf: Leaf): string | null {
  try {
    const config = validateConfig(overlay(local, trial));
    if (leaf.key === 'schedules') for (const slot of config.uplink?.window.schedules ?? []) parseSlot(slot);
    return null;
  } catch (err) {
    if (isGatewayError(err))
      return err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') || err.message;
    return (err as Error).message;
  }
}
