import type { Socket } from 'node:net';

/** Replies waiting before the socket is paused (bounds memory per connection). */
export const maxPendingReplies = 64;

/**
 * Writes replies on a socket in the order they were queued, each once its promise resolves, and
 * pauses reading while `maxPendingReplies` are waiting. A reply resolving to undefined writes nothing.
 */
export class OrderedReplies {
  readonly #socket: Socket;
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  #paused = false;
  #closing = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Replies queued and not yet written. */
  get pending(): number {
    return this.#pending;
  }

  /** True while reading is held here: too many replies pending, or draining to close. */
  get holding(): boolean {
    return this.#paused || this.#closing;
  }

  /** Queues `reply`; it is written after every reply queued before it. */
  push(reply: Promise<Buffer | undefined>): void {
    this.#pending++;
    if (this.#pending >= maxPendingReplies && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
    const safe = reply.catch(() => undefined);
    this.#tail = Promise.all([this.#tail, safe]).then(([, bytes]) => {
      this.#pending--;
      if (bytes !== undefined && !this.#socket.destroyed) this.#socket.write(bytes);
      if (this.#paused && !this.#closing && this.#pending < maxPendingReplies) {
        this.#paused = false;
        this.#socket.resume();
      }
    });
  }

  /** Stops reading, then resolves once every queued reply was written (or the socket is gone). */
  drain(): Promise<void> {
    this.#closing = true;
    this.#socket.pause();
    return this.#tail;
  }
}
