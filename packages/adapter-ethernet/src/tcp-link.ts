import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ByteLink, ProtocolDriver, ProtocolSession, SessionContext } from '@attache/core';

/**
 * Parse time (ms) one connection may use before it yields: reading pauses until the event loop's
 * next turn, so that the other connections' reads and ACKs go first. libuv reads up to 32 chunks
 * of 64 KiB from a ready socket per turn: without this, a device sending at full speed makes the
 * others wait for all of it.
 */
export const turnBudgetMs = 2;

/**
 * One TCP connection running a protocol session: bytes to the session (with a parse-time budget
 * per event-loop turn), the session's writes to the socket. A peer's half-close (FIN) is answered
 * once the session drained (its replies are out: the socket allows half-open); `close()` does the
 * same from our side.
 */
export class TcpLink implements ByteLink {
  readonly name: string;
  /** Resolves when the socket has closed, for whatever reason. */
  readonly closed: Promise<void>;
  readonly #socket: Socket;
  readonly #session: ProtocolSession;
  #closing: Promise<void> | undefined;
  /** Parse time used since this connection last yielded, ms. */
  #spentMs = 0;
  #yielding = false;
  /** The session asked to pause. */
  #held = false;
  /** Writes are being gathered until the end of this turn's microtasks. */
  #corked = false;

  constructor(socket: Socket, name: string, driver: ProtocolDriver, context: SessionContext) {
    this.name = name;
    this.#socket = socket;
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#session.end();
        resolve();
      }),
    );
    this.#session = driver.open(this, context);
    socket.on('data', (chunk: Buffer) => {
      if (this.#closing !== undefined) return;
      const started = performance.now();
      this.#session.receive(chunk);
      this.#spentMs += performance.now() - started;
      if (this.#spentMs >= turnBudgetMs) this.#yield();
    });
    socket.once('end', () => void this.close());
  }

  get open(): boolean {
    return !this.#socket.destroyed;
  }

  /**
   * Writes `bytes`. The writes of one turn of the event loop go out together: the first corks the
   * socket until the turn's microtasks are done, so the ACKs of a group commit that resolve
   * together cost one system call, not one each.
   */
  write(bytes: Buffer): boolean {
    if (this.#socket.destroyed) return false;
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(bytes);
    return true;
  }

  pause(): void {
    this.#held = true;
    this.#socket.pause();
  }

  resume(): void {
    this.#held = false;
    this.#resume();
  }

  /** Stops reading, waits for the session to drain (its replies written), then closes the socket. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#socket.pause();
      await this.#session.drained();
      this.#socket.end();
      this.#socket.destroySoon();
    })();
    return this.#closing.then(() => this.closed);
  }

  #yield(): void {
    if (this.#yielding) return;
    this.#yielding = true;
    this.#socket.pause();
    setImmediate(() => {
      this.#yielding = false;
      this.#spentMs = 0;
      this.#resume();
    });
  }

  #resume(): void {
    if (this.#closing === undefined && !this.#held && !this.#yielding && !this.#socket.destroyed) {
      this.#socket.resume();
    }
  }
}
