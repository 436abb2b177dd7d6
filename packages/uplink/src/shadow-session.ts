import { randomUUID } from 'node:crypto';
import type { Logger } from '@attache/core';
import type { MqttSession } from './mqtt-session.js';
import type { ShadowTopics } from './topics.js';
import type { JsonObject, SettingsOutcome, WindowHost } from './window-host.js';

/** How long the shadow service may take to answer a get or an update. */
const responseTimeoutMs = 3000;

interface Pending {
  token: string;
  resolve: (doc: JsonObject | null) => void;
}

function parse(payload: Buffer): JsonObject | null {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as JsonObject)
      : null;
  } catch {
    return null;
  }
}

function desiredOf(doc: JsonObject): JsonObject | null {
  const state = doc.state as JsonObject | undefined;
  const desired = (state?.desired ?? null) as JsonObject | null;
  return desired && typeof desired === 'object' && Object.keys(desired).length > 0 ? desired : null;
}

/**
 * The gateway's side of its named Device Shadow during one window: gets the document, applies the
 * desired settings through the host, reports state and the settings outcome, and handles deltas
 * that arrive while the window is open. A shadow service that does not answer costs a timeout and
 * a warning, never the window.
 */
export class ShadowSession {
  readonly #session: MqttSession;
  readonly #topics: ShadowTopics;
  readonly #host: WindowHost;
  readonly #log: Logger;
  readonly #waiting = new Map<string, Pending>();
  #handledVersion = -1;
  #settings: SettingsOutcome | undefined;
  #work: Promise<void> = Promise.resolve();

  constructor(options: { session: MqttSession; topics: ShadowTopics; host: WindowHost; log: Logger }) {
    this.#session = options.session;
    this.#topics = options.topics;
    this.#host = options.host;
    this.#log = options.log;
  }

  /** Subscribes to the shadow's responses; call before {@link sync}. */
  async subscribe(): Promise<void> {
    const t = this.#topics;
    this.#session.onMessage((topic, payload) => this.#onMessage(topic, payload));
    await this.#session.subscribe([
      t.getAccepted,
      t.getRejected,
      t.updateAccepted,
      t.updateRejected,
      t.updateDelta,
    ]);
  }

  /** Gets the document, applies its desired settings, reports. Resolves when done (never rejects). */
  sync(): Promise<void> {
    this.#work = this.#work.then(() =>
      this.#sync().catch((err: unknown) => this.#log.warn({ err }, 'shadow sync failed')),
    );
    return this.#work;
  }

  /** Resolves once any delta handling in progress is done. */
  settled(): Promise<void> {
    return this.#work;
  }

  async #sync(): Promise<void> {
    const doc = await this.#request(this.#topics.get, {});
    if (doc === null) this.#log.warn('the shadow service did not answer: shadow not synchronized');
    const desired = doc && 'state' in doc ? desiredOf(doc) : null;
    const version = typeof doc?.version === 'number' ? doc.version : 0;
    await this.#apply(desired, version);
  }

  async #apply(desired: JsonObject | null, version: number): Promise<void> {
    if (desired && this.#host.applyDesired && version !== this.#handledVersion) {
      this.#handledVersion = version;
      this.#settings = await this.#host.applyDesired(desired, version);
      this.#log.info(
        { version, applied: Object.keys(this.#settings.applied), refused: this.#settings.refused.length },
        'shadow desired settings handled',
      );
    }
    await this.#report();
  }

  async #report(): Promise<void> {
    const state = (await this.#host.reportState?.()) ?? {};
    const settings = this.#settings ??
      (state.settings as SettingsOutcome | undefined) ?? { applied: {}, refused: [] };
    // Mirror the applied settings at the top level so that the shadow's delta clears once applied.
    const reported = { ...state, ...settings.applied, settings };
    const answer = await this.#request(this.#topics.update, { state: { reported } });
    if (answer === null) this.#log.warn('the shadow update was not acknowledged');
    else if ('code' in answer)
      this.#log.warn({ code: answer.code, reason: answer.message }, 'shadow update rejected');
  }

  #onMessage(topic: string, payload: Buffer): void {
    const doc = parse(payload);
    if (doc === null) return;
    if (topic === this.#topics.updateDelta) {
      const version = typeof doc.version === 'number' ? doc.version : 0;
      const delta = (doc.state ?? null) as JsonObject | null;
      this.#work = this.#work.then(() =>
        this.#apply(delta, version).catch((err: unknown) => this.#log.warn({ err }, 'shadow delta failed')),
      );
      return;
    }
    const token = typeof doc.clientToken === 'string' ? doc.clientToken : '';
    const pending = this.#waiting.get(token);
    if (!pending) return;
    this.#waiting.delete(token);
    pending.resolve(doc);
  }

  /** Publishes `body` with a client token; resolves the accepted/rejected document, or null on timeout. */
  async #request(topic: string, body: JsonObject): Promise<JsonObject | null> {
    const token = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<JsonObject | null>((resolve) => {
      this.#waiting.set(token, { token, resolve });
      timer = setTimeout(() => resolve(null), responseTimeoutMs);
    });
    await this.#session.publish(topic, JSON.stringify({ ...body, clientToken: token }));
    const doc = await answer;
    clearTimeout(timer);
    this.#waiting.delete(token);
    return doc;
  }
}
