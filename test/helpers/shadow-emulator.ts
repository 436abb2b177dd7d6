// A small AWS IoT Device Shadow service on the test mosquitto: it speaks the documented named-shadow
// topics ($aws/things/<thing>/shadow/name/<name>/get|update with /accepted, /rejected, /delta),
// keeps documents in memory, and lets a test act as the cloud (setDesired). Mosquitto 2.0 accepts
// `$aws/...` topics from clients as ordinary topics; only wildcards at the first level skip them,
// so the emulator subscribes with `$aws/things/+/...` filters.
import type { MosquittoBroker, TestPki } from '@attache/devkit';
import { iot, mqtt5 } from 'aws-iot-device-sdk-v2';

type Json = Record<string, unknown>;

interface ShadowDoc {
  desired: Json;
  reported: Json;
  version: number;
}

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** AWS's merge: objects merge, null deletes, anything else replaces. */
function merge(target: Json, patch: Json): Json {
  const out: Json = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObject(v) && isObject(out[k])) out[k] = merge(out[k] as Json, v);
    else out[k] = v;
  }
  return out;
}

/** The desired values that differ from reported (AWS's delta). */
function delta(desired: Json, reported: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(desired)) {
    if (isObject(v) && isObject(reported[k])) {
      const d = delta(v, reported[k] as Json);
      if (Object.keys(d).length > 0) out[k] = d;
    } else if (JSON.stringify(v) !== JSON.stringify(reported[k])) out[k] = v;
  }
  return out;
}

/** The Device Shadow emulator: start it, act as the cloud, read what devices reported. */
export class ShadowEmulator {
  readonly #client: mqtt5.Mqtt5Client;
  readonly #docs = new Map<string, ShadowDoc>();
  /** Every update a device published, in order (`thing/name` and the body). */
  readonly updates: { key: string; body: Json }[] = [];

  private constructor(client: mqtt5.Mqtt5Client) {
    this.#client = client;
  }

  /** Connects with the PKI's subscriber certificate and subscribes to every shadow's get/update. */
  static async start(broker: MosquittoBroker, pki: TestPki): Promise<ShadowEmulator> {
    const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      broker.host,
      pki.subscriberCertFile,
      pki.subscriberKeyFile,
    );
    builder
      .withCertificateAuthorityFromPath(undefined, pki.caFile)
      .withPort(broker.port)
      .withConnectProperties({ clientId: `shadow-emulator-${process.pid}`, keepAliveIntervalSeconds: 60 })
      .withExtendedValidationAndFlowControlOptions(mqtt5.ClientExtendedValidationAndFlowControl.None);
    const client = new mqtt5.Mqtt5Client(builder.build());
    const emulator = new ShadowEmulator(client);
    const connected = new Promise<void>((resolve, reject) => {
      client.once('connectionSuccess', () => resolve());
      client.once('connectionFailure', (e) => reject(e.error));
    });
    client.on('messageReceived', (e) => emulator.#onMessage(e.message));
    client.start();
    await connected;
    await client.subscribe({
      subscriptions: [
        { topicFilter: '$aws/things/+/shadow/name/+/update', qos: mqtt5.QoS.AtLeastOnce },
        { topicFilter: '$aws/things/+/shadow/name/+/get', qos: mqtt5.QoS.AtLeastOnce },
      ],
    });
    return emulator;
  }

  /** The cloud sets `desired` (merged, as UpdateThingShadow does); a delta goes to the device. */
  async setDesired(thing: string, name: string, desired: Json): Promise<void> {
    await this.#update(thing, name, { state: { desired } });
  }

  /** The shadow document, or undefined when none exists. */
  document(thing: string, name: string): ShadowDoc | undefined {
    return this.#docs.get(`${thing}/${name}`);
  }

  async stop(): Promise<void> {
    const stopped = new Promise((resolve) => this.#client.once('stopped', resolve));
    this.#client.stop();
    await stopped;
    this.#client.close();
  }

  #onMessage(message: mqtt5.PublishPacket): void {
    const m = /^\$aws\/things\/([^/]+)\/shadow\/name\/([^/]+)\/(get|update)$/.exec(message.topicName);
    if (!m) return;
    const [, thing = '', name = '', op] = m;
    let body: Json;
    try {
      body = JSON.parse(Buffer.from(message.payload as ArrayBuffer).toString('utf8')) as Json;
    } catch {
      void this.#publish(`$aws/things/${thing}/shadow/name/${name}/${op}/rejected`, {
        code: 400,
        message: 'Payload contains invalid json',
      });
      return;
    }
    if (op === 'get') void this.#get(thing, name, body);
    else {
      this.updates.push({ key: `${thing}/${name}`, body });
      void this.#update(thing, name, body);
    }
  }

  async #get(thing: string, name: string, body: Json): Promise<void> {
    const base = `$aws/things/${thing}/shadow/name/${name}/get`;
    const doc = this.#docs.get(`${thing}/${name}`);
    const token = body.clientToken === undefined ? {} : { clientToken: body.clientToken };
    if (!doc) {
      await this.#publish(`${base}/rejected`, {
        code: 404,
        message: `No shadow exists with name: '${name}'`,
        ...token,
      });
      return;
    }
    const d = delta(doc.desired, doc.reported);
    const state = {
      desired: doc.desired,
      reported: doc.reported,
      ...(Object.keys(d).length ? { delta: d } : {}),
    };
    await this.#publish(`${base}/accepted`, { state, version: doc.version, timestamp: Date.now(), ...token });
  }

  async #update(thing: string, name: string, body: Json): Promise<void> {
    const base = `$aws/things/${thing}/shadow/name/${name}/update`;
    const state = body.state;
    const token = body.clientToken === undefined ? {} : { clientToken: body.clientToken };
    if (!isObject(state)) {
      await this.#publish(`${base}/rejected`, {
        code: 400,
        message: 'Missing required node: state',
        ...token,
      });
      return;
    }
    if (Buffer.byteLength(JSON.stringify(body)) > 8192) {
      await this.#publish(`${base}/rejected`, {
        code: 413,
        message: 'The payload exceeds the maximum size',
        ...token,
      });
      return;
    }
    const key = `${thing}/${name}`;
    const doc = this.#docs.get(key) ?? { desired: {}, reported: {}, version: 0 };
    doc.desired = merge(doc.desired, isObject(state.desired) ? state.desired : {});
    doc.reported = merge(doc.reported, isObject(state.reported) ? state.reported : {});
    doc.version++;
    this.#docs.set(key, doc);
    await this.#publish(`${base}/accepted`, { state, version: doc.version, timestamp: Date.now(), ...token });
    const d = delta(doc.desired, doc.reported);
    if (isObject(state.desired) && Object.keys(d).length > 0) {
      await this.#publish(`${base}/delta`, { state: d, version: doc.version, timestamp: Date.now() });
    }
  }

  async #publish(topic: string, body: Json): Promise<void> {
    await this.#client.publish({
      topicName: topic,
      payload: JSON.stringify(body),
      qos: mqtt5.QoS.AtLeastOnce,
    });
  }
}
