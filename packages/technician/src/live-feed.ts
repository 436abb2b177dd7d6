import type { ServerResponse } from 'node:http';
import type { Clock } from '@attache/core';
import type { LiveReading, TechnicianHost } from './host.js';
import { baseHeaders } from './http.js';

/** Browsers connected at once; a further one ends the oldest (a technician reloading the page). */
const maxClients = 4;
/** A client that has this much unsent is too slow (or gone): it is dropped, never buffered without bound. */
const maxPendingBytes = 256 * 1024;
/** A comment line this often keeps the stream open through idle periods and checks the session, ms. */
const heartbeatMs = 15_000;

interface Client {
  res: ServerResponse;
  alive: () => boolean;
}

/**
 * The live readings as server-sent events (`event: reading`, data a {@link LiveReading}): every
 * reading once stored, and on connecting the last one of each device. Subscribed to the host only
 * while a browser listens, so an unwatched page costs nothing per reading but the last-reading map.
 */
export class LiveFeed {
  readonly #host: TechnicianHost;
  readonly #clock: Clock;
  readonly #clients = new Set<Client>();
  readonly #last = new Map<string, LiveReading>();
  readonly #unsubscribe: () => void;
  #heartbeat: { cancel(): void } | undefined;

  constructor(host: TechnicianHost, clock: Clock) {
    this.#host = host;
    this.#clock = clock;
    this.#unsubscribe = this.#host.onReading((reading) => this.#publish(reading));
  }

  /** When the last reading of `deviceId` was captured, since the page started. */
  lastReadingAt(deviceId: string): string | undefined {
    return this.#last.get(deviceId)?.capturedAt;
  }

  /** Streams to `res` until the browser goes, `alive()` turns false (logged out, expired) or the feed closes. */
  add(res: ServerResponse, alive: () => boolean): void {
    if (this.#clients.size >= maxClients) {
      const oldest = this.#clients.values().next().value as Client;
      this.#drop(oldest);
    }
    const client = { res, alive };
    this.#clients.add(client);
    res.on('close', () => this.#clients.delete(client));
    res.writeHead(200, {
      ...baseHeaders,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    for (const reading of this.#last.values()) this.#send(client, reading);
    this.#scheduleHeartbeat();
  }

  close(): void {
    this.#unsubscribe();
    this.#heartbeat?.cancel();
    for (const client of this.#clients) this.#drop(client);
  }

  #publish(reading: LiveReading): void {
    this.#last.set(reading.deviceId, reading);
    for (const client of this.#clients) this.#send(client, reading);
  }

  #send(client: Client, reading: LiveReading): void {
    if (client.res.writableLength > maxPendingBytes) {
      this.#drop(client);
      return;
    }
    client.res.write(`event: reading\ndata: ${JSON.stringify(reading)}\n\n`);
  }

  #drop(client: Client): void {
    this.#clients.delete(client);
    client.res.end();
  }

  #scheduleHeartbeat(): void {
    if (this.#heartbeat) return;
    this.#heartbeat = this.#clock.setTimeout(() => {
      this.#heartbeat = undefined;
      for (const client of this.#clients) {
        if (client.alive()) client.res.write(': still here\n\n');
        else this.#drop(client);
      }
      if (this.#clients.size > 0) this.#scheduleHeartbeat();
    }, heartbeatMs);
  }
}
