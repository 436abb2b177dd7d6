import type { Logger, Outbox, UplinkConfig, WindowResult } from '@attache/core';
import { GatewayError, nullLogger } from '@attache/core';
import { runWindow } from './upload-window.js';

/** Options of {@link IotCoreUplink}. */
export interface IotCoreUplinkOptions {
  /** The gateway's AWS IoT thing name: MQTT client id, `{gatewayId}` in the topic, `gatewayId` of batches. */
  gatewayId: string;
  /** The validated `uplink` config section (defaults filled by `validateConfig`). */
  config: UplinkConfig;
  /** Default: `nullLogger`. A child `{ module: 'uplink' }` is used. */
  logger?: Logger;
}

/** Options of {@link IotCoreUplink.openWindow}. */
export interface OpenWindowOptions {
  /** Aborting ends the window early with outcome `deadline`; unacknowledged records stay in the outbox. */
  signal?: AbortSignal;
}

/**
 * Uploads the outbox's backlog to AWS IoT Core (or any MQTT 5 broker with mutual TLS) in
 * connectivity windows, with aws-iot-device-sdk-v2. Holds no connection between windows.
 */
export class IotCoreUplink {
  readonly #gatewayId: string;
  readonly #config: UplinkConfig;
  readonly #log: Logger;
  #busy = false;

  constructor(options: IotCoreUplinkOptions) {
    if (typeof options?.gatewayId !== 'string' || options.gatewayId === '') {
      throw new TypeError('"gatewayId" must be a non-empty string');
    }
    if (typeof options.config !== 'object' || options.config === null) {
      throw new TypeError('"config" must be the uplink config section');
    }
    this.#gatewayId = options.gatewayId;
    this.#config = options.config;
    this.#log = (options.logger ?? nullLogger).child({ module: 'uplink' });
  }

  /** True while a window is open. */
  get busy(): boolean {
    return this.#busy;
  }

  /**
   * Opens a connectivity window: when the outbox holds records, connects (MQTT 5, X.509 mutual TLS),
   * uploads the backlog in batch messages of at most `config.maxMessageBytes` (QoS 1, up to
   * `config.maxInFlight` unacknowledged), deletes each batch's records only after its PUBACK, and
   * disconnects. Ends when the outbox is empty (`drained`), at `config.window.maxDurationSeconds` or
   * when `signal` aborts (`deadline`), or on the first failure (`failed`, with `error.code`
   * `ATTACHE_UPLINK_CONNECT`, `ATTACHE_UPLINK_PUBLISH`, or the outbox's code). Unacknowledged records
   * always stay in the outbox. Resolves once the client is stopped and closed; never rejects for
   * broker, network or cache trouble. Rejects `ATTACHE_WINDOW_BUSY` when a window is already open.
   */
  async openWindow(outbox: Outbox, options: OpenWindowOptions = {}): Promise<WindowResult> {
    if (this.#busy) throw new GatewayError('ATTACHE_WINDOW_BUSY', 'a connectivity window is already open');
    this.#busy = true;
    try {
      return await runWindow({
        gatewayId: this.#gatewayId,
        config: this.#config,
        outbox,
        log: this.#log,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } finally {
      this.#busy = false;
    }
  }
}
