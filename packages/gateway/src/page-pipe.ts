// The pages of a drain on a pipe of their own between the gateway and the window process: each page's
// bytes as one frame (a 4-byte length, then the bytes), written as they are and read into buffers the
// window reuses. The IPC channel carries only the page's seqs and its frame's number. So a page is
// neither copied into a message nor parsed out of one, and the window allocates no new memory per
// page: the buffers it drains into are the ones it drained the last pages into (see the gateway
// README, "Pages on their own pipe").
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { GatewayError, type RecordPage } from '@attache/core';

/** A page as the IPC reply carries it when its bytes went on the page pipe: frame `frame`'s bytes are its `json`. */
export interface PipedPage {
  firstSeq: number;
  lastSeq: number;
  count: number;
  frame: number;
}

const lengthBytes = 4;
/** Read buffer of the window's end: one pipe read at most. */
const readBufferBytes = 64 * 1024;
/** Buffers kept for reuse: a page being published, one read ahead, one arriving. */
const poolSize = 4;
/** New buffers are a multiple of this. */
const sizeStep = 16 * 1024;

/** The gateway's end: writes each page as the next frame. */
export class PageFrameWriter {
  readonly #pipe: Writable;
  #next = 0;

  constructor(pipe: Writable) {
    this.#pipe = pipe;
  }

  /** Writes `page`'s bytes as the next frame and returns what the reply says of it. */
  write(page: RecordPage): PipedPage {
    const length = Buffer.allocUnsafe(lengthBytes);
    length.writeUInt32BE(page.json.length);
    // The length and the bytes in one write (writev): one system call, and the window process woken
    // once for a frame rather than first for its 4-byte length.
    this.#pipe.cork();
    this.#pipe.write(length);
    // Once the pipe has the bytes, the page's buffer can take a later page.
    this.#pipe.write(page.json, () => page.release?.());
    this.#pipe.uncork();
    return { firstSeq: page.firstSeq, lastSeq: page.lastSeq, count: page.count, frame: this.#next++ };
  }
}

/**
 * The window's end: reads frames in order into pooled buffers; `take(n)` resolves with frame `n` as a
 * {@link RecordPage} whose `release()` gives its buffer back for a later frame. A frame is numbered by
 * its place on the pipe, as the writer numbers them.
 */
export class PageFrameReader {
  readonly #pool: Buffer[] = [];
  readonly #arrived = new Map<number, Buffer>();
  readonly #waiting = new Map<number, { resolve: (bytes: Buffer) => void; reject: (err: Error) => void }>();
  readonly #length = Buffer.alloc(lengthBytes);
  #lengthAt = 0;
  #frame: Buffer | undefined;
  #frameAt = 0;
  #number = 0;
  #ended: GatewayError | undefined;

  /** Takes the bytes of `source`: each chunk as `feed` receives it (a chunk it is given is not kept). */
  constructor(source?: Socket) {
    source?.on('error', (err) => this.end(err));
    source?.on('end', () => this.end());
    source?.on('close', () => this.end());
  }

  /** Reads the page pipe at `fd` (the window process's end) with one read buffer for every read. */
  static open(fd: number): PageFrameReader {
    let reader: PageFrameReader | undefined;
    const buffer = Buffer.allocUnsafe(readBufferBytes);
    const socket = new Socket({
      fd,
      readable: true,
      writable: false,
      onread: {
        buffer,
        callback: (bytes: number, into: Uint8Array) => reader?.feed(into.subarray(0, bytes)),
      },
    } as ConstructorParameters<typeof Socket>[0]);
    reader = new PageFrameReader(socket);
    socket.unref();
    return reader;
  }

  /** Frame `frame`'s page (seqs from the IPC reply); rejects ATTACHE_INTERNAL when the pipe ended first. */
  async take(piped: PipedPage): Promise<RecordPage> {
    const bytes = await this.#bytesOf(piped.frame);
    const { firstSeq, lastSeq, count } = piped;
    let released = false;
    const release = () => {
      if (!released) this.#release(bytes);
      released = true;
    };
    return { firstSeq, lastSeq, count, json: bytes, release };
  }

  /** Takes bytes read from the pipe: frames are cut out of them as they complete. */
  feed(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === undefined) {
        const n = Math.min(lengthBytes - this.#lengthAt, chunk.length - at);
        this.#length.set(chunk.subarray(at, at + n), this.#lengthAt);
        this.#lengthAt += n;
        at += n;
        if (this.#lengthAt < lengthBytes) return;
        this.#lengthAt = 0;
        this.#frame = this.#buffer(this.#length.readUInt32BE(0));
        this.#frameAt = 0;
      }
      const frame = this.#frame;
      const n = Math.min(frame.length - this.#frameAt, chunk.length - at);
      frame.set(chunk.subarray(at, at + n), this.#frameAt);
      this.#frameAt += n;
      at += n;
      if (this.#frameAt === frame.length) {
        this.#frame = undefined;
        this.#arrive(this.#number++, frame);
      }
    }
  }

  /** The pipe ended: frames not yet arrived never will (`take` rejects for them). */
  end(err?: Error): void {
    if (this.#ended) return;
    const why = err ? `: ${err.message}` : '';
    this.#ended = new GatewayError('ATTACHE_INTERNAL', `the page pipe to the gateway ended${why}`);
    for (const waiter of this.#waiting.values()) waiter.reject(this.#ended);
    this.#waiting.clear();
  }

  #bytesOf(frame: number): Promise<Buffer> {
    const arrived = this.#arrived.get(frame);
    if (arrived) {
      this.#arrived.delete(frame);
      return Promise.resolve(arrived);
    }
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiting.set(frame, { resolve, reject }));
  }

  #arrive(frame: number, bytes: Buffer): void {
    const waiter = this.#waiting.get(frame);
    this.#waiting.delete(frame);
    if (waiter) waiter.resolve(bytes);
    else this.#arrived.set(frame, bytes);
  }

  /** A buffer of `length` bytes: a view of a pooled one when one is large enough, else a new one. */
  #buffer(length: number): Buffer {
    const index = this.#pool.findIndex((b) => b.buffer.byteLength >= length);
    const pooled = index < 0 ? undefined : this.#pool.splice(index, 1)[0];
    if (pooled) return Buffer.from(pooled.buffer, 0, length);
    // Rounded up so that the next pages, a little longer or shorter, fit in it too.
    return Buffer.allocUnsafeSlow(Math.ceil(length / sizeStep) * sizeStep || sizeStep).subarray(0, length);
  }

  #release(bytes: Buffer): void {
    if (this.#pool.length >= poolSize) return;
    this.#pool.push(Buffer.from(bytes.buffer, 0, bytes.buffer.byteLength));
  }
}
