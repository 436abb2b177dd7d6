import type { GatewayError } from '@attache/core';

type State = 'closed' | 'opening' | 'open' | 'closing';

/**
 * The open/close state machine of a cache: `open()` while open or opening returns the same
 * promise, `close()` waits for an open in progress, and calls are accepted only while open.
 */
export class OpenState {
  readonly #closedError: () => GatewayError;
  #state: State = 'closed';
  #opening: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /** `closedError` makes the ATTACHE_CACHE_CLOSED error that calls get while not open. */
  constructor(closedError: () => GatewayError) {
    this.#closedError = closedError;
  }

  /** True while open (not opening, not closing). */
  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Throws ATTACHE_CACHE_CLOSED unless open. */
  assertOpen(): void {
    if (this.#state !== 'open') throw this.#closedError();
  }

  /** Runs `load` once while closed; open when it resolves, closed again when it rejects. */
  open(load: () => Promise<void>): Promise<void> {
    if (this.#state === 'closing') return Promise.reject(this.#closedError());
    if (this.#state === 'closed') {
      this.#state = 'opening';
      this.#opening = load().then(
        () => {
          this.#state = 'open';
        },
        (err: unknown) => {
          this.#state = 'closed';
          this.#opening = undefined;
          throw err;
        },
      );
    }
    return this.#opening ?? Promise.resolve();
  }

  /** Runs `unload` once while open (after an open in progress); closed when it settles. */
  async close(unload: () => Promise<void>): Promise<void> {
    if (this.#state === 'opening') await this.#opening?.catch(() => undefined);
    if (this.#state === 'open') {
      this.#state = 'closing';
      this.#closing = unload().finally(() => {
        this.#opening = undefined;
        this.#closing = undefined;
        this.#state = 'closed';
      });
    }
    await this.#closing;
  }
}
