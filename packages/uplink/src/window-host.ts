/** A JSON object as the uplink passes it through without looking inside. */
export type JsonObject = Record<string, unknown>;

/** A gateway event waiting for upload (event.schema.json); `eventId` identifies it. */
export type PendingEvent = { eventId: number } & JsonObject;

/** What the gateway did with the shadow's desired settings (state.schema.json#/$defs/settingsOutcome). */
export interface SettingsOutcome {
  /** The remote settings in force. */
  applied: JsonObject;
  /** What was not applied, and why. */
  refused: { path: string; message: string }[];
  desiredVersion?: number;
}

/**
 * The window's MQTT connection as a job runner sees it: QoS 1 publishes that resolve on PUBACK, and
 * subscriptions to exact topics (no wildcards) with a handler each.
 */
export interface WindowChannel {
  publish(topic: string, payload: Buffer): Promise<void>;
  subscribe(topic: string, handler: (payload: Buffer) => void): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
}

/**
 * What a window asks of the gateway beyond the outbox: all optional. Without `reportState` the
 * window publishes no state and uses no shadow; without `events` it publishes no events.
 */
export interface WindowHost {
  /**
   * The gateway's state (state.schema.json#/$defs/reported, `settings` being the remote settings in
   * force), published on the state topic and reported to the named shadow.
   */
  reportState?(): Promise<JsonObject>;
  /**
   * Validates, applies and persists the shadow's `state.desired` (shadow `version`); resolves what
   * was applied and refused. Called at most once per shadow document version.
   */
  applyDesired?(desired: JsonObject, version: number): Promise<SettingsOutcome>;
  /** Events waiting for upload, oldest first. */
  pendingEvents?(): Promise<PendingEvent[]>;
  /** Deletes events the broker acknowledged. */
  removeEvents?(eventIds: number[]): Promise<void>;
  /**
   * Work pushed down from the cloud (AWS IoT Jobs), run beside the upload on the window's
   * connection; the window waits for it before it counts as drained, and aborts `signal` at its end.
   */
  runJobs?(channel: WindowChannel, signal: AbortSignal): Promise<void>;
}
