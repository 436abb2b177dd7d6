import type { Clock, DeviceField, ReadingSink } from '@attache/core';
import { AdapterBase, GatewayError, nullLogger, systemClock } from '@attache/core';

/** Options of {@link MockAdapter}. */
export interface MockAdapterOptions {
  deviceId: string;
  sink: ReadingSink;
  /** Default `systemClock`. */
  clock?: Clock;
}

/**
 * An adapter with no device behind it, for testing what sits above adapters (the gateway, status,
 * events) in-process: `send()` is a device reading arriving, `disconnect()`/`connect()` a link that
 * drops and comes back. It keeps the adapter contract (the contract suite runs against it).
 */
export class MockAdapter extends AdapterBase {
  readonly #sink: ReadingSink;
  readonly #inFlight = new Set<Promise<void>>();
  #running = false;
  #linkUp = true;
  #sent = 0;

  constructor(options: MockAdapterOptions) {
    const clock = options.clock ?? systemClock;
    super({ deviceId: options.deviceId, adapter: 'rs232', log: nullLogger, clock });
    this.#sink = options.sink;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.setState('starting');
    this.#linkState();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    this.setState('stopped');
  }

  /** The device sends one reading (`fields`, default one counter field); dropped while the link is down. */
  send(fields: DeviceField[] = [{ name: 'N', value: String(++this.#sent) }]): void {
    if (!this.#running || !this.#linkUp) return;
    this.report.frame();
    const { clock } = this;
    const reading = {
      deviceId: this.deviceId,
      adapter: 'rs232' as const,
      protocol: 'mock',
      receivedAt: clock.now(),
      monotonicMs: clock.monotonicMs(),
      fields,
      markers: [],
      raw: Buffer.from(fields.map((f) => `${f.name}=${f.value}`).join(' ')),
    };
    const delivery = Promise.resolve()
      .then(() => this.#sink(reading))
      .then(
        () => this.report.stored(),
        (err: unknown) => {
          if (err instanceof GatewayError && err.code === 'ATTACHE_MALFORMED') {
            this.report.malformed(err, reading.raw.length);
          } else this.report.refused(err);
        },
      )
      .finally(() => this.#inFlight.delete(delivery));
    this.#inFlight.add(delivery);
  }

  /** The link drops: `disconnected` with `ATTACHE_PORT_NOT_OPEN`. */
  disconnect(): void {
    this.#linkUp = false;
    this.#linkState();
  }

  /** The link is back: `connected`. */
  connect(): void {
    this.#linkUp = true;
    this.#linkState();
  }

  #linkState(): void {
    if (!this.#running) return;
    if (this.#linkUp) this.setState('connected');
    else this.setState('disconnected', new GatewayError('ATTACHE_PORT_NOT_OPEN', 'mock link down'));
  }
}
