import { mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsumerError } from './errors.js';
import { isGatewayState } from './gateway-state.js';
import type { StateStore, VersionedState } from './state-store.js';

/**
 * A StateStore of one JSON file per gateway in a directory (`<dir>/<gatewayId>.json`, mode 0600),
 * each written to a temporary file, fsynced and renamed over the old one, so that a crash leaves the
 * old or the new state, never half of one. The version check is atomic within one process: give
 * each consumer process its own directory. Node only (`@attache/consumer/file-store`).
 */
export class FileStateStore implements StateStore {
  readonly #dir: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('"dir" must be a directory path');
    this.#dir = dir;
  }

  #path(gatewayId: string): string {
    // Gateway ids are [a-zA-Z0-9:_-]; ':' is escaped so that the name is portable.
    return join(this.#dir, `${gatewayId.replaceAll(':', '%3A')}.json`);
  }

  async get(gatewayId: string): Promise<VersionedState | undefined> {
    let text: string;
    try {
      text = await readFile(this.#path(gatewayId), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let item: { version?: unknown; state?: unknown };
    try {
      item = JSON.parse(text) as typeof item;
    } catch (cause) {
      throw new ConsumerError('ATTACHE_CONSUMER_STORE', `the state file of ${gatewayId} is not JSON`, {
        cause,
      });
    }
    if (!Number.isSafeInteger(item.version) || !isGatewayState(item.state)) {
      throw new ConsumerError('ATTACHE_CONSUMER_STORE', `the state file of ${gatewayId} is not dedupe state`);
    }
    return { state: item.state, version: item.version as number };
  }

  put(gatewayId: string, state: VersionedState['state'], expectedVersion: number): Promise<boolean> {
    const run = this.#queue.then(async () => {
      if (((await this.get(gatewayId))?.version ?? 0) !== expectedVersion) return false;
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      const path = this.#path(gatewayId);
      const tmp = `${path}.tmp`;
      const file = await open(tmp, 'w', 0o600);
      try {
        await file.writeFile(JSON.stringify({ version: expectedVersion + 1, state }));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, path);
      return true;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.#dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5).replaceAll('%3A', ':'));
  }
}
