/**
 * The part of an MQTT connection the jobs agent needs, so it runs inside a connectivity window on
 * the uplink's own connection (one TLS session per window).
 */
export interface MqttChannel {
  /** Publishes with QoS 1; resolves on the PUBACK, rejects when the broker refuses or the connection drops. */
  publish(topic: string, payload: Buffer): Promise<void>;
  /** Subscribes (QoS 1) and calls `handler` with each payload on exactly `topic`; resolves on the SUBACK. */
  subscribe(topic: string, handler: (payload: Buffer) => void): Promise<void>;
  /** Ends a subscription made with `subscribe`; resolves on the UNSUBACK. */
  unsubscribe(topic: string): Promise<void>;
}

/** The AWS IoT Jobs MQTT topics of one thing (AWS IoT Developer Guide, "Jobs device MQTT API operations"). */
export class JobsTopics {
  readonly #base: string;

  /** Throws a TypeError when `thingName` is not a valid AWS IoT thing name. */
  constructor(thingName: string) {
    if (typeof thingName !== 'string' || !/^[a-zA-Z0-9:_-]{1,128}$/.test(thingName)) {
      throw new TypeError('"thingName" must be 1-128 characters of [a-zA-Z0-9:_-]');
    }
    this.#base = `$aws/things/${thingName}/jobs`;
  }

  /** Where the service announces the next pending execution (or that none is left). */
  get notifyNext(): string {
    return `${this.#base}/notify-next`;
  }

  /** StartNextPendingJobExecution request topic. */
  get startNext(): string {
    return `${this.#base}/start-next`;
  }

  /** UpdateJobExecution request topic of `jobId`. */
  update(jobId: string): string {
    return `${this.#base}/${jobId}/update`;
  }
}
