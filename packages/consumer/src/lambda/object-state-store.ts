import { ConsumerError } from '../errors.js';
import { type GatewayState, isGatewayState } from '../gateway-state.js';
import type { StateStore, VersionedState } from '../state-store.js';
import type { ObjectStore } from './s3-object-store.js';

/**
 * A StateStore of one object per gateway (`<prefix><gatewayId>.json`) in an object store with
 * conditional writes (S3: `If-None-Match: *` for the first put, `If-Match: <ETag>` after). `list()`
 * is not offered: sweep named gateways.
 */
export class ObjectStateStore implements StateStore {
  readonly #objects: ObjectStore;
  readonly #prefix: string;
  readonly #etags = new Map<string, { version: number; etag: string }>();

  constructor(objects: ObjectStore, prefix = 'consumer-state/') {
    this.#objects = objects;
    this.#prefix = prefix;
  }

  async get(gatewayId: string): Promise<VersionedState | undefined> {
    const object = await this.#objects.get(`${this.#prefix}${gatewayId}.json`);
    if (!object) return undefined;
    let item: { version?: unknown; state?: unknown };
    try {
      item = JSON.parse(new TextDecoder().decode(object.body)) as typeof item;
    } catch (cause) {
      throw new ConsumerError('ATTACHE_CONSUMER_STORE', `the state object of ${gatewayId} is not JSON`, {
        cause,
      });
    }
    if (!Number.isSafeInteger(item.version) || !isGatewayState(item.state)) {
      throw new ConsumerError(
        'ATTACHE_CONSUMER_STORE',
        `the state object of ${gatewayId} is not dedupe state`,
      );
    }
    this.#etags.set(gatewayId, { version: item.version as number, etag: object.etag });
    return { state: item.state, version: item.version as number };
  }

  async put(gatewayId: string, state: GatewayState, expectedVersion: number): Promise<boolean> {
    const known = this.#etags.get(gatewayId);
    if (expectedVersion !== 0 && known?.version !== expectedVersion) return false;
    const body = JSON.stringify({ version: expectedVersion + 1, state });
    const condition =
      expectedVersion === 0 ? { ifNoneMatch: '*' as const } : { ifMatch: known?.etag as string };
    return this.#objects.put(`${this.#prefix}${gatewayId}.json`, body, condition);
  }

  async list(): Promise<string[]> {
    throw new TypeError('ObjectStateStore cannot list gateways: pass their ids to sweep()');
  }
}
