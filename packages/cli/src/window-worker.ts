// The window process: forked by the gateway for one connectivity window, so that the AWS CRT (TLS,
// MQTT, its threads and ~10 MB of RSS) lives only while a window is open and a fault in it cannot
// stop the acquisition of readings. It sees the gateway's cache as an Outbox over IPC.
import { GatewayError, type Outbox, type StoredRecord } from '@attache/core';
import { IotCoreUplink } from '@attache/uplink';
import { createLogger } from './log.js';
import type { FromWindow, ToWindow } from './window-protocol.js';

/** An outbox request before it gets its id (Omit distributed over the union). */
type Request =
  Extract<FromWindow, { type: 'read' | 'remove' }> extends infer R
    ? R extends unknown
      ? Omit<R, 'id'>
      : never
    : never;

function send(message: FromWindow): void {
  process.send?.(message);
}

/** The parent's cache, one request at a time over the IPC channel. */
class IpcOutbox implements Outbox {
  #next = 1;
  readonly #pending = new Map<number, { resolve: (r: StoredRecord[]) => void; reject: (e: Error) => void }>();

  reply(message: Extract<ToWindow, { type: 'reply' }>): void {
    const pending = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    if (!pending) return;
    if (message.error)
      pending.reject(new GatewayError(message.error.code as GatewayError['code'], message.error.message));
    else pending.resolve(message.records ?? []);
  }

  #request(message: Request): Promise<StoredRecord[]> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      send({ ...message, id } as FromWindow);
    });
  }

  read(options: { afterSeq: number; limit: number; maxBytes: number }): Promise<StoredRecord[]> {
    return this.#request({ type: 'read', ...options });
  }

  async remove(firstSeq: number, lastSeq: number): Promise<void> {
    await this.#request({ type: 'remove', firstSeq, lastSeq });
  }
}

const outbox = new IpcOutbox();
const abort = new AbortController();

process.on('message', (message: ToWindow) => {
  switch (message.type) {
    case 'start': {
      const logger = createLogger(message.logLevel, false);
      const uplink = new IotCoreUplink({ gatewayId: message.gatewayId, config: message.uplink, logger });
      void uplink.openWindow(outbox, { signal: abort.signal }).then((result) => {
        // The CRT client may keep the event loop alive after close: exit once the parent has the result.
        process.send?.({ type: 'result', result } satisfies FromWindow, () => process.exit(0));
      });
      break;
    }
    case 'abort':
      abort.abort();
      break;
    case 'reply':
      outbox.reply(message);
      break;
  }
});
// The gateway went away: end the window; unacknowledged records are still in its cache.
process.on('disconnect', () => process.exit(1));
