import type { UplinkConfig } from '@attache/core';
import { GatewayError, type Logger } from '@attache/core';
import type { mqtt5 } from 'aws-iot-device-sdk-v2';
import { brokerCaFile, tlsPolicy } from './tls-policy.js';

/** Options of {@link MqttSession.create}. */
export interface MqttSessionOptions {
  gatewayId: string;
  config: UplinkConfig;
  log: Logger;
}

// A broker that stops acknowledging (throttling, half-open TCP) must not hold a window forever.
const ackTimeoutSeconds = 60;
const keepAliveSeconds = 60;
const stopTimeoutMs = 5000;

interface CrtErrorLike {
  error_name?: string;
  message?: string;
}

/** The CRT's error name and text: never holds a path or key material. */
function describeCrtError(error: unknown): string {
  const e = (error ?? {}) as CrtErrorLike;
  return e.error_name ?? e.message ?? String(error);
}

/**
 * One MQTT 5 client of aws-iot-device-sdk-v2 for the length of a window. The SDK is imported here,
 * lazily: it is only loaded when a window opens.
 */
export class MqttSession {
  readonly #client: mqtt5.Mqtt5Client;
  readonly #log: Logger;
  readonly #stopped: Promise<void>;
  readonly #qos1: mqtt5.QoS;
  #stopping: Promise<void> | undefined;
  /** Ends a pending `connect()` when the session is stopped first. */
  #cancelConnect: () => void = () => {};

  private constructor(client: mqtt5.Mqtt5Client, log: Logger, qos1: mqtt5.QoS) {
    this.#client = client;
    this.#log = log;
    this.#qos1 = qos1;
    this.#stopped = new Promise((resolve) => client.once('stopped', () => resolve()));
  }

  /**
   * Starts loading the SDK (the CRT's native library and its modules, ~0.2 s of CPU on an x86 VM),
   * so that a window can load it while it waits on the network (the TLS probe). Never rejects:
   * a failure to load is `create()`'s to report.
   */
  static preload(): Promise<void> {
    return import('aws-iot-device-sdk-v2').then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Loads the SDK and builds a client (not yet started). Rejects `ATTACHE_UPLINK_CONNECT` when the
   * certificate, key or CA file cannot be loaded.
   */
  static async create(options: MqttSessionOptions): Promise<MqttSession> {
    // The SDK is CommonJS: its exports are the default export's, under Node and in the shipped
    // bundle alike (esbuild gives a split-off CommonJS module nothing but its default export).
    const { io, iot, mqtt5: m } = (await import('aws-iot-device-sdk-v2')).default;
    const { config } = options;
    let client: mqtt5.Mqtt5Client;
    const preference = io.TlsCipherPreference[tlsPolicy(config).crtCipherPreference];
    if (!io.tls_cipher_preference_is_supported(preference)) {
      throw new GatewayError(
        'ATTACHE_UPLINK_CONNECT',
        'this aws-crt build cannot hold the MQTT connection to TLS 1.2 or later (no TLSv1_2_2025_07 cipher preference)',
      );
    }
    const caFile = brokerCaFile(config);
    try {
      const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
        config.endpoint,
        config.certFile,
        config.keyFile,
      );
      if (caFile !== undefined) builder.withCertificateAuthorityFromPath(undefined, caFile);
      // The only setting that keeps aws-crt at TLS 1.2+: min_tls_version alone still negotiated TLS 1.1.
      builder.withTlsCipherPreference(preference);
      builder
        .withPort(config.port)
        .withConnectProperties({ clientId: options.gatewayId, keepAliveIntervalSeconds: keepAliveSeconds })
        .withSessionBehavior(m.ClientSessionBehavior.Clean)
        .withOfflineQueueBehavior(m.ClientOperationQueueBehavior.FailAllOnDisconnect)
        .withAckTimeoutSeconds(ackTimeoutSeconds)
        // Reconnects inside a window: aws-crt's own back-off, fully jittered (said here, not left to its default).
        .withRetryJitterMode(m.RetryJitterType.Full)
        .withExtendedValidationAndFlowControlOptions(
          config.flowControl === 'aws-iot-core'
            ? m.ClientExtendedValidationAndFlowControl.AwsIotCoreDefaults
            : m.ClientExtendedValidationAndFlowControl.None,
        );
      client = new m.Mqtt5Client(builder.build());
    } catch (err) {
      throw new GatewayError(
        'ATTACHE_UPLINK_CONNECT',
        `could not load the TLS certificate, key or CA (${describeCrtError(err)})`,
        { cause: err },
      );
    }
    return new MqttSession(client, options.log, m.QoS.AtLeastOnce).#logLifecycle();
  }

  #logLifecycle(): this {
    const log = this.#log;
    this.#client.on('attemptingConnect', () => log.info('connecting'));
    this.#client.on('connectionSuccess', (event) =>
      log.info(
        {
          receiveMaximum: event.settings.receiveMaximumFromServer,
          maximumPacketSize: event.settings.maximumPacketSizeToServer,
        },
        'connected',
      ),
    );
    this.#client.on('connectionFailure', (event) =>
      log.warn({ err: event.error, reasonCode: event.connack?.reasonCode }, 'connection failed'),
    );
    this.#client.on('disconnection', (event) => {
      // Our own stop() disconnects too: that one is routine, not a warning.
      const requested = describeCrtError(event.error) === 'AWS_ERROR_MQTT5_USER_REQUESTED_STOP';
      const fields = { err: event.error, reasonCode: event.disconnect?.reasonCode };
      if (requested) log.info('disconnected');
      else log.warn(fields, 'disconnected');
    });
    this.#client.on('stopped', () => log.info('stopped'));
    return this;
  }

  /**
   * Starts the client and resolves on its first `connectionSuccess`. Rejects `ATTACHE_UPLINK_CONNECT`
   * on the first `connectionFailure` or after `timeoutMs`, `ATTACHE_CANCELED` when the session is
   * closed first; the caller closes the session in every case.
   */
  connect(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: GatewayError): void => {
        clearTimeout(timer);
        this.#client.off('connectionSuccess', onSuccess);
        this.#client.off('connectionFailure', onFailure);
        if (err) reject(err);
        else resolve();
      };
      const onSuccess = (): void => done();
      const onFailure = (event: mqtt5.ConnectionFailureEvent): void => {
        const reason = event.connack ? `CONNACK reason code ${event.connack.reasonCode}` : '';
        const text = reason || describeCrtError(event.error);
        done(
          new GatewayError('ATTACHE_UPLINK_CONNECT', `connection failed: ${text}`, { cause: event.error }),
        );
      };
      const timer = setTimeout(
        () => done(new GatewayError('ATTACHE_UPLINK_CONNECT', `not connected within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#cancelConnect = () => done(new GatewayError('ATTACHE_CANCELED', 'the session was closed'));
      this.#client.on('connectionSuccess', onSuccess);
      this.#client.on('connectionFailure', onFailure);
      this.#client.start();
    });
  }

  /** The SDK's client, for the SDK's own service clients (e.g. `iotidentity`) over this connection. */
  get client(): mqtt5.Mqtt5Client {
    return this.#client;
  }

  /** Calls `listener` once if the connection drops after it was established. */
  onceDisconnected(listener: (message: string) => void): void {
    this.#client.once('disconnection', (event) => listener(describeCrtError(event.error)));
  }

  /**
   * Publishes `payload` with QoS 1 and `contentType` (default application/json). Resolves with the
   * PUBACK's reason code; rejects when the operation fails (connection lost, ack timeout, stopped).
   */
  async publish(topic: string, payload: Buffer | string, contentType = 'application/json'): Promise<number> {
    const result = await this.#client.publish({
      topicName: topic,
      payload,
      qos: this.#qos1,
      contentType,
    });
    if (result === undefined) throw new Error('no PUBACK for a QoS 1 publish');
    return result.reasonCode;
  }

  /**
   * Subscribes (QoS 1) to `topics` (at most 8, AWS IoT Core's limit per SUBSCRIBE). Rejects
   * `ATTACHE_UPLINK_CONNECT` when the broker refuses one.
   */
  async subscribe(topics: string[]): Promise<void> {
    const suback = await this.#client.subscribe({
      subscriptions: topics.map((topicFilter) => ({ topicFilter, qos: this.#qos1 })),
    });
    const refused = suback.reasonCodes.findIndex((code) => code >= 0x80);
    if (refused >= 0) {
      throw new GatewayError(
        'ATTACHE_UPLINK_CONNECT',
        `the broker refused the subscription to ${topics[refused]}`,
      );
    }
  }

  /** Unsubscribes from `topics`; resolves on the UNSUBACK. */
  async unsubscribe(topics: string[]): Promise<void> {
    await this.#client.unsubscribe({ topicFilters: topics });
  }

  /** Calls `listener` with the topic and payload of every message received. */
  onMessage(listener: (topic: string, payload: Buffer) => void): void {
    this.#client.on('messageReceived', (event) => {
      const payload = event.message.payload;
      listener(
        event.message.topicName,
        payload === undefined ? Buffer.alloc(0) : Buffer.from(payload as ArrayBuffer),
      );
    });
  }

  /**
   * Stops the client and waits for `stopped` (at most 5 s): pending operations fail. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#cancelConnect();
    this.#client.stop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#stopped,
      new Promise((resolve) => (timer = setTimeout(resolve, stopTimeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Releases the client's native resources; call once, after `stop()`. The native client may still
   * hold the event loop open until garbage collection: see the README.
   */
  close(): void {
    this.#client.close();
  }
}
