import type { GatewayState } from './gateway-state.js';

/** State as a store returns it: the gateway's dedupe state and the version it was written at. */
export interface VersionedState {
  state: GatewayState;
  /** Incremented by every successful `put`; 1 after the first. */
  version: number;
}

/**
 * Where the consumer keeps each gateway's dedupe state between messages and restarts. A conditional
 * put makes two workers that process messages of one gateway at once safe: the later commit fails
 * and its message is processed again.
 *
 * DynamoDB shape: table key `gatewayId` (S); `get` is a strongly consistent GetItem; `put` is PutItem
 * of `{gatewayId, version: expectedVersion + 1, state}` with
 * `ConditionExpression: attribute_not_exists(gatewayId) OR version = :expected` (the first form
 * when `expectedVersion` is 0), returning false on ConditionalCheckFailedException.
 */
export interface StateStore {
  /** The gateway's state, or undefined when none was ever put. */
  get(gatewayId: string): Promise<VersionedState | undefined>;
  /**
   * Writes `state` as version `expectedVersion + 1` if the stored version is still
   * `expectedVersion` (0: nothing stored). Resolves false, writing nothing, otherwise.
   */
  put(gatewayId: string, state: GatewayState, expectedVersion: number): Promise<boolean>;
  /** Every gateway with state (used by `sweep()` without ids). */
  list(): Promise<string[]>;
}

/** A StateStore in memory (tests, a dashboard that rebuilds its state from the stored messages at start). */
export class MemoryStateStore implements StateStore {
  readonly #items = new Map<string, { json: string; version: number }>();

  async get(gatewayId: string): Promise<VersionedState | undefined> {
    const item = this.#items.get(gatewayId);
    return item && { state: JSON.parse(item.json) as GatewayState, version: item.version };
  }

  async put(gatewayId: string, state: GatewayState, expectedVersion: number): Promise<boolean> {
    if ((this.#items.get(gatewayId)?.version ?? 0) !== expectedVersion) return false;
    this.#items.set(gatewayId, { json: JSON.stringify(state), version: expectedVersion + 1 });
    return true;
  }

  async list(): Promise<string[]> {
    return [...this.#items.keys()];
  }

  /** Bytes of JSON held for all gateways (what the state costs a store). */
  get bytes(): number {
    let total = 0;
    for (const [id, item] of this.#items) total += id.length + item.json.length;
    return total;
  }
}
