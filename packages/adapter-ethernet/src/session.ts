import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { OrderedReplies } from './ordered-replies.js';

/**
 * Parse time (ms) one connection may use before it yields: reading pauses until the event loop's
 * next turn, so that the other connections' reads and ACKs go first. libuv reads up to 32 chunks
 * of 64 KiB from a ready socket per turn: without this, a device sending at full speed makes the
 * others wait for all of it.
 */
export const turnBudgetMs = 2;

/** One connection's protocol handler. */
export interface StreamSession {
  /** Resolves when the socket has closed, for whatever reason. */
  readonly closed: Promise<void>;
  /** Stops reading, waits for the sink calls in flight and their replies, then closes the socket. */
  close(): Promise<void>;
}

/**
 * What every session shares: replies written in order, a socket closed only after they are, and
 * a peer's half-close (FIN) answered once the replies are out (the socket must allow half-open).
 */
export abstract class SocketSession implements StreamSession {
  readonly closed: Promise<void>;
  protected readonly socket: Socket;
  protected readonly replies: OrderedReplies;
  #closing: Promise<void> | undefined;
  /** Parse time used since this connection last yielded, ms. */
  #spentMs = 0;
  #yielding = false;

  constructor(socket: Socket) {
    this.socket = socket;
    this.replies = new OrderedReplies(socket);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.onClose();
        resolve();
      }),
    );
    socket.on('data', (chunk: Buffer) => {
      if (this.#closing !== undefined) return;
      const started = performance.now();
      this.onData(chunk);
      this.#spentMs += performance.now() - started;
      if (this.#spentMs >= turnBudgetMs) this.#yield();
    });
    socket.once('end', () => {
      this.onEnd();
      void this.close();
    });
  }

  #yield(): void {
    if (this.#yielding) return;
    this.#yielding = true;
    this.socket.pause();
    setImmediate(() => {
      this.#yielding = false;
      this.#spentMs = 0;
      if (!this.closing && !this.replies.holding && !this.socket.destroyed) this.socket.resume();
    });
  }

  /** True once `close()` was called (data arriving afterwards is ignored). */
  protected get closing(): boolean {
    return this.#closing !== undefined;
  }

  close(): Promise<void> {
    this.#closing ??= this.replies.drain().then(() => {
      this.socket.end();
      this.socket.destroySoon();
    });
    return this.#closing.then(() => this.closed);
  }

  /** Bytes from the peer. */
  protected abstract onData(chunk: Buffer): void;

  /** The peer finished sending. Default: nothing. */
  protected onEnd(): void {}

  /** The socket closed: release timers. Default: nothing. */
  protected onClose(): void {}
}
