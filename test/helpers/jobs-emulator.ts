// A small AWS IoT Jobs emulator speaking the documented device topics (AWS IoT
// Developer Guide, "Jobs device MQTT API operations") on the test mosquitto, and an MqttChannel over a real aws-iot-device-sdk-v2
// MQTT 5 client with mutual TLS: what a gateway sees of AWS IoT Jobs in a connectivity window.
import type { MqttChannel } from '@attache/jobs';
import { iot, mqtt5 } from 'aws-iot-device-sdk-v2';

/** Where to connect and as whom. */
export interface BrokerLogin {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  caFile: string;
  clientId: string;
}

/** An MqttChannel over one MQTT 5 connection: one per connectivity window. */
export class SdkMqttChannel implements MqttChannel {
  readonly #client: mqtt5.Mqtt5Client;
  readonly #handlers = new Map<string, (payload: Buffer, topic: string) => void>();
  #closed = false;

  private constructor(client: mqtt5.Mqtt5Client) {
    this.#client = client;
    client.on('messageReceived', (event) => {
      const { topicName, payload } = event.message;
      const body = payload === undefined ? Buffer.alloc(0) : Buffer.from(payload as ArrayBuffer);
      for (const [filter, handler] of this.#handlers) {
        if (matches(filter, topicName)) handler(body, topicName);
      }
    });
  }

  /** Connects (resolves on CONNACK, rejects on failure within 40 s). */
  static async connect(login: BrokerLogin): Promise<SdkMqttChannel> {
    const builder = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      login.host,
      login.certFile,
      login.keyFile,
    );
    builder
      .withCertificateAuthorityFromPath(undefined, login.caFile)
      .withPort(login.port)
      .withConnectProperties({ clientId: login.clientId, keepAliveIntervalSeconds: 60 })
      .withSessionBehavior(mqtt5.ClientSessionBehavior.Clean)
      .withExtendedValidationAndFlowControlOptions(mqtt5.ClientExtendedValidationAndFlowControl.None);
    const client = new mqtt5.Mqtt5Client(builder.build());
    const channel = new SdkMqttChannel(client);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not connected within 40 s')), 40_000);
      client.once('connectionSuccess', () => {
        clearTimeout(timer);
        resolve();
      });
      client.once('connectionFailure', (e) => {
        clearTimeout(timer);
        reject(e.error);
      });
      client.start();
    });
    return channel;
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    const result = await this.#client.publish({ topicName: topic, payload, qos: mqtt5.QoS.AtLeastOnce });
    const code = (result as mqtt5.PubackPacket | undefined)?.reasonCode ?? 0x80;
    if (code >= 0x80) throw new Error(`PUBACK reason code ${code} on ${topic}`);
  }

  /** Subscribes to a topic filter; `handler` gets each message's payload and topic. */
  async subscribe(topic: string, handler: (payload: Buffer, topic: string) => void): Promise<void> {
    this.#handlers.set(topic, handler);
    const suback = await this.#client.subscribe({
      subscriptions: [{ topicFilter: topic, qos: mqtt5.QoS.AtLeastOnce }],
    });
    if ((suback.reasonCodes[0] ?? 0x80) >= 0x80) throw new Error(`subscription to ${topic} refused`);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.#handlers.delete(topic);
    await this.#client.unsubscribe({ topicFilters: [topic] });
  }

  /** Ends the window: stop, wait for `stopped`, release the native client. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const stopped = new Promise<void>((resolve) => this.#client.once('stopped', () => resolve()));
    this.#client.stop();
    await Promise.race([stopped, new Promise((r) => setTimeout(r, 5000))]);
    this.#client.close();
  }
}

/** MQTT topic filter matching with `+` and `#`. */
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

type Status = 'QUEUED' | 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'REJECTED' | 'CANCELED';

/** One job execution of the emulated thing. */
export interface EmulatedExecution {
  jobId: string;
  jobDocument: unknown;
  status: Status;
  statusDetails: Record<string, string>;
  executionNumber: number;
  versionNumber: number;
  queuedAt: number;
  /** Every accepted UpdateJobExecution, in order. */
  updates: { status: Status; statusDetails: Record<string, string>; at: number }[];
  /** How many times start-next handed it out. */
  handedOut: number;
  /** When start-next last handed it out (ms since the epoch). */
  handedOutAt: number;
}

const terminal = new Set<Status>(['SUCCEEDED', 'FAILED', 'REJECTED', 'CANCELED']);

/**
 * The cloud side of AWS IoT Jobs for one thing: StartNextPendingJobExecution, UpdateJobExecution
 * (accepted/rejected by clientToken) and notify-next, on the test broker.
 */
export class JobsEmulator {
  readonly executions = new Map<string, EmulatedExecution>();
  readonly #channel: SdkMqttChannel;
  readonly #base: string;

  private constructor(channel: SdkMqttChannel, thingName: string) {
    this.#channel = channel;
    this.#base = `$aws/things/${thingName}/jobs`;
  }

  /** Connects as `login` (another client than the gateway) and subscribes to the request topics. */
  static async start(login: BrokerLogin, thingName: string): Promise<JobsEmulator> {
    const channel = await SdkMqttChannel.connect(login);
    const emulator = new JobsEmulator(channel, thingName);
    await channel.subscribe(`${emulator.#base}/start-next`, (p) => void emulator.#startNext(p));
    return emulator;
  }

  /** Queues a job (executionNumber 1) and announces it on notify-next when it is the next one. */
  async addJob(jobId: string, jobDocument: unknown): Promise<void> {
    this.executions.set(jobId, {
      jobId,
      jobDocument,
      status: 'QUEUED',
      statusDetails: {},
      executionNumber: 1,
      versionNumber: 1,
      queuedAt: Date.now(),
      updates: [],
      handedOut: 0,
      handedOutAt: 0,
    });
    await this.#channel.subscribe(`${this.#base}/${jobId}/update`, (p) => void this.#update(jobId, p));
    if (this.#next()?.jobId === jobId) await this.#notifyNext();
  }

  /** Puts a finished execution back to IN_PROGRESS, as if the gateway's terminal update was lost. */
  forgetTerminal(jobId: string): void {
    const execution = this.#get(jobId);
    execution.status = 'IN_PROGRESS';
  }

  /** Cancels a job from the cloud side (CancelJobExecution): later updates are refused. */
  cancel(jobId: string): void {
    this.#get(jobId).status = 'CANCELED';
  }

  /** The execution of `jobId`. */
  #get(jobId: string): EmulatedExecution {
    const execution = this.executions.get(jobId);
    if (!execution) throw new Error(`no job ${jobId}`);
    return execution;
  }

  #next(): EmulatedExecution | undefined {
    const all = [...this.executions.values()];
    return (
      all.find((e) => e.status === 'IN_PROGRESS') ??
      all.filter((e) => e.status === 'QUEUED').sort((a, b) => a.queuedAt - b.queuedAt)[0]
    );
  }

  #describe(e: EmulatedExecution): Record<string, unknown> {
    const { jobId, jobDocument, status, statusDetails, executionNumber, versionNumber, queuedAt } = e;
    return {
      jobId,
      jobDocument,
      status,
      statusDetails,
      executionNumber,
      versionNumber,
      queuedAt: Math.floor(queuedAt / 1000),
    };
  }

  async #reply(topic: string, body: Record<string, unknown>): Promise<void> {
    await this.#channel.publish(
      topic,
      Buffer.from(JSON.stringify({ ...body, timestamp: Math.floor(Date.now() / 1000) })),
    );
  }

  async #notifyNext(): Promise<void> {
    const next = this.#next();
    await this.#reply(`${this.#base}/notify-next`, next ? { execution: this.#describe(next) } : {});
  }

  async #startNext(payload: Buffer): Promise<void> {
    const { clientToken } = JSON.parse(payload.toString('utf8')) as { clientToken?: string };
    const next = this.#next();
    if (next) {
      if (next.status === 'QUEUED') {
        next.status = 'IN_PROGRESS';
        next.versionNumber++;
      }
      next.handedOut++;
      next.handedOutAt = Date.now();
    }
    const body = next ? { clientToken, execution: this.#describe(next) } : { clientToken };
    await this.#reply(`${this.#base}/start-next/accepted`, body);
  }

  async #update(jobId: string, payload: Buffer): Promise<void> {
    const request = JSON.parse(payload.toString('utf8')) as {
      clientToken?: string;
      status: Status;
      statusDetails?: Record<string, string>;
      executionNumber?: number;
    };
    const topic = `${this.#base}/${jobId}/update`;
    const e = this.#get(jobId);
    const refuse = (code: string, message: string) =>
      this.#reply(`${topic}/rejected`, { clientToken: request.clientToken, code, message });
    if (terminal.has(e.status)) return refuse('InvalidStateTransition', `execution is ${e.status}`);
    if (request.executionNumber !== undefined && request.executionNumber !== e.executionNumber) {
      return refuse('InvalidRequest', 'wrong executionNumber');
    }
    const details = request.statusDetails ?? {};
    if (Object.values(details).some((v) => typeof v !== 'string'))
      return refuse('InvalidRequest', 'statusDetails values must be strings');
    e.status = request.status;
    e.statusDetails = { ...e.statusDetails, ...details };
    e.versionNumber++;
    e.updates.push({ status: request.status, statusDetails: details, at: Date.now() });
    await this.#reply(`${topic}/accepted`, {
      clientToken: request.clientToken,
      executionState: { status: e.status, statusDetails: e.statusDetails, versionNumber: e.versionNumber },
    });
    if (terminal.has(e.status)) await this.#notifyNext();
  }

  /** Disconnects. */
  async stop(): Promise<void> {
    await this.#channel.close();
  }
}
