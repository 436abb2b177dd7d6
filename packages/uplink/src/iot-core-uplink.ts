import type { Logger, Outbox, UplinkConfig } from '@attache/core';
import { GatewayError, nullLogger } from '@attache/core';
import type { provisionByClaim } from './fleet-provisioning.js';
import { runWindow, type WindowProvisioning, type WindowReport } from './upload-window.js';
import type { WindowHost } from './window-host.js';

/** Options of {@link IotCoreUplink}. */
export interface IotCoreUplinkOptions {
  /** The gateway's AWS IoT thing name: MQTT client id, `{gatewayId}` in topics, `gatewayId` of messages. */
  gatewayId: string;
  /** The validated `uplink` config section (defaults filled by `validateConfig`). */
  config: UplinkConfig;
  /** Default: `nullLogger`. A child `{ module: 'uplink' }` is used. */
  logger?: Logger;
}

/** Options of {@link IotCoreUplink.openWindow}. */
export interface OpenWindowOptions {
  /** Aborting ends the window early (outcome `deadline`, endedBy `interrupted`); unacknowledged records stay. */
  signal?: AbortSignal;
  /** The window's deadline in ms from now. Default: `config.window.maxDurationSeconds` × 1000. */
  maxDurationMs?: number;
  /** Byte budget (payload bytes sent). Default: `config.window.maxBytes`; 0 means none. */
  maxBytes?: number;
  /** Always-connected: once drained, stay connected and upload new records until deadline or abort. */
  linger?: boolean;
  /** State, shadow settings and gateway events; see {@link WindowHost}. */
  host?: WindowHost;
  /**
   * With `config.provisioning`: where the provisioning progress is kept and the board's serial
   * number. The window then provisions the box by claim first when `config.certFile` does not exist
   * (see {@link provisionByClaim}); a refusal fails the window with `ATTACHE_PROVISIONING`.
   */
  provisioning?: WindowProvisioning;
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
   * Opens a connectivity window. Refuses an endpoint outside the configured regions/endpoints
   * before any connection, checks TLS with a fast probe (precise reason for a wrong CA, host name or
   * clock), connects (MQTT 5, X.509 mutual TLS), publishes the gateway's state and pending events,
   * syncs the named shadow, and uploads the backlog in batches of at most `config.maxMessageBytes`
   * (QoS 1, up to `config.maxInFlight` unacknowledged), deleting records only after their PUBACK.
   * Ends when everything is acknowledged (`drained`), at the deadline, on the byte budget or abort
   * (`deadline`), or on the first failure (`failed`, with `error.code` `ATTACHE_UPLINK_CONNECT`,
   * `ATTACHE_UPLINK_PUBLISH`, `ATTACHE_CONFIG_INVALID` or the outbox's code). Resolves once the
   * client is stopped and closed; never rejects for broker, network or cache trouble. Rejects
   * `ATTACHE_WINDOW_BUSY` when a window is already open.
   */
  async openWindow(outbox: Outbox, options: OpenWindowOptions = {}): Promise<WindowReport> {
    if (this.#busy) throw new GatewayError('ATTACHE_WINDOW_BUSY', 'a connectivity window is already open');
    this.#busy = true;
    try {
      return await runWindow({
        ...options,
        gatewayId: this.#gatewayId,
        config: this.#config,
        outbox,
        log: this.#log,
      });
    } finally {
      this.#busy = false;
    }
  }
}
