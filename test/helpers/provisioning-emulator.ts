// A small AWS IoT Fleet Provisioning emulator speaking the documented MQTT API (AWS IoT
// Developer Guide, "Device provisioning MQTT API") on the test mosquitto: CreateCertificateFromCsr on
// `$aws/certificates/create-from-csr/json` and RegisterThing on
// `$aws/provisioning-templates/<template>/provision/json`, answering on `/accepted` or `/rejected`
// with AWS's error shape `{ statusCode, errorCode, errorMessage }`. It signs CSRs with the test CA,
// so an issued certificate connects to the same broker (which trusts that CA), hands out certificate
// ownership tokens, runs an optional pre-provisioning hook and keeps a registry of things.
// Not emulated: an issued certificate stays usable before RegisterThing activates it (mosquitto
// knows no PENDING_ACTIVATION), and CBOR payloads. AWS answers only the connection that asked;
// mosquitto delivers an answer to every subscriber of the response topic, so tests provision one
// box at a time. The error codes are the emulator's choice in AWS's documented error shape.
import { execFile } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestPki } from '@attache/devkit';
import { type BrokerLogin, SdkMqttChannel } from './jobs-emulator.js';

const run = promisify(execFile);
const csrTopic = '$aws/certificates/create-from-csr/json';
const registerFilter = '$aws/provisioning-templates/+/provision/json';
/** AWS: a certificate ownership token is valid for one hour (AWS IoT Developer Guide, "Device provisioning MQTT API"). */
const tokenLifetimeMs = 3_600_000;

type Parameters = Record<string, string>;

/** What a pre-provisioning hook (a Lambda function on AWS) answers. */
export interface HookAnswer {
  allowProvisioning: boolean;
  parameterOverrides?: Parameters;
}

/** One provisioning template. */
export interface EmulatedTemplate {
  /** The thing's name from the (hook-overridden) parameters. Default: the `ThingName` parameter. */
  thingName?: (parameters: Parameters) => string;
  /** The pre-provisioning hook, called with the request's parameters. */
  hook?: (parameters: Parameters) => HookAnswer | Promise<HookAnswer>;
}

/** A certificate the emulator issued. */
export interface EmulatedCertificate {
  certificateId: string;
  certificatePem: string;
  status: 'PENDING_ACTIVATION' | 'ACTIVE';
  /** The CSR's subject, kept as AWS keeps it. */
  subject: string;
  thingName: string | null;
  issuedAt: number;
}

/** A thing in the emulated registry. */
export interface EmulatedThing {
  thingName: string;
  templateName: string;
  parameters: Parameters;
  certificateIds: Set<string>;
}

type Operation = 'create-from-csr' | 'register';

/** Requests of one operation held back (see {@link FleetProvisioningEmulator.hold}). */
interface Hold {
  held: (() => Promise<void>)[];
  arrived: () => void;
  arrival: Promise<void>;
}

/** Options of {@link FleetProvisioningEmulator.start}. */
export interface FleetProvisioningEmulatorOptions {
  /** The service identity's login (another client than the boxes). */
  login: BrokerLogin;
  /** The CA that signs the certificates (the broker trusts it). */
  pki: TestPki;
  templates: Record<string, EmulatedTemplate>;
  /** The emulator's clock (token expiry). Default `Date.now`. */
  now?: () => number;
}

/** The cloud side of Fleet Provisioning, on the test broker. */
export class FleetProvisioningEmulator {
  readonly certificates = new Map<string, EmulatedCertificate>();
  readonly things = new Map<string, EmulatedThing>();
  /** Every request received, in order: operation, template (register only) and when. */
  readonly requests: { operation: Operation; templateName?: string; at: number }[] = [];
  readonly #tokens = new Map<string, { certificateId: string; expiresAt: number }>();
  readonly #channel: SdkMqttChannel;
  readonly #options: FleetProvisioningEmulatorOptions;
  readonly #dir: string;
  readonly #holds = new Map<Operation, Hold>();
  readonly #now: () => number;

  private constructor(channel: SdkMqttChannel, options: FleetProvisioningEmulatorOptions, dir: string) {
    this.#channel = channel;
    this.#options = options;
    this.#dir = dir;
    this.#now = options.now ?? Date.now;
  }

  /** Connects as the service identity and subscribes to both request topics. */
  static async start(options: FleetProvisioningEmulatorOptions): Promise<FleetProvisioningEmulator> {
    const dir = await mkdtemp(join(tmpdir(), 'attache-fp-'));
    const channel = await SdkMqttChannel.connect(options.login);
    const emulator = new FleetProvisioningEmulator(channel, options, dir);
    await channel.subscribe(csrTopic, (p) => emulator.#receive('create-from-csr', csrTopic, p));
    await channel.subscribe(registerFilter, (p, topic) => emulator.#receive('register', topic, p));
    return emulator;
  }

  /**
   * Holds back the requests of `operation` from now on (a box cut off while it waits for the
   * answer). Resolves `arrived` once one came; `release(process)` then answers them (true: as AWS
   * would, though nobody may listen any more) or drops them (false: never reached the cloud).
   */
  hold(operation: Operation): { arrived: Promise<void>; release: (process: boolean) => Promise<void> } {
    let arrived: () => void = () => {};
    const arrival = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const hold: Hold = { held: [], arrived, arrival };
    this.#holds.set(operation, hold);
    return {
      arrived: arrival,
      release: async (process) => {
        this.#holds.delete(operation);
        if (process) for (const answer of hold.held) await answer();
      },
    };
  }

  /** Disconnects and deletes the emulator's temp files. */
  async stop(): Promise<void> {
    await this.#channel.close();
    await rm(this.#dir, { recursive: true, force: true });
  }

  #receive(operation: Operation, topic: string, payload: Buffer): void {
    const templateName = operation === 'register' ? topic.split('/')[2] : undefined;
    this.requests.push({ operation, ...(templateName ? { templateName } : {}), at: this.#now() });
    const answer = () =>
      operation === 'register' ? this.#register(templateName ?? '', payload) : this.#createFromCsr(payload);
    const hold = this.#holds.get(operation);
    if (!hold) {
      void answer();
      return;
    }
    hold.held.push(answer);
    hold.arrived();
  }

  async #reply(topic: string, body: Record<string, unknown>): Promise<void> {
    await this.#channel.publish(topic, Buffer.from(JSON.stringify(body)));
  }

  #refuse(topic: string, statusCode: number, errorCode: string, errorMessage: string): Promise<void> {
    return this.#reply(`${topic}/rejected`, { statusCode, errorCode, errorMessage });
  }

  async #createFromCsr(payload: Buffer): Promise<void> {
    const csr = parse(payload)?.certificateSigningRequest;
    if (typeof csr !== 'string') {
      return this.#refuse(csrTopic, 400, 'InvalidPayload', 'certificateSigningRequest is required');
    }
    const certificatePem = await this.#sign(csr);
    if (!certificatePem) return this.#refuse(csrTopic, 400, 'InvalidPayload', 'Invalid CSR');
    const x509 = new X509Certificate(certificatePem);
    const certificateId = createHash('sha256').update(x509.raw).digest('hex');
    const certificateOwnershipToken = randomBytes(96).toString('base64');
    this.certificates.set(certificateId, {
      certificateId,
      certificatePem,
      status: 'PENDING_ACTIVATION',
      subject: x509.subject,
      thingName: null,
      issuedAt: this.#now(),
    });
    this.#tokens.set(certificateOwnershipToken, {
      certificateId,
      expiresAt: this.#now() + tokenLifetimeMs,
    });
    await this.#reply(`${csrTopic}/accepted`, {
      certificateId,
      certificatePem,
      certificateOwnershipToken,
    });
  }

  /** The CSR signed by the test CA with the CSR's own subject; null when it is not a valid CSR. */
  async #sign(csr: string): Promise<string | null> {
    const name = randomBytes(8).toString('hex');
    const csrFile = join(this.#dir, `${name}.csr`);
    const extFile = join(this.#dir, `${name}.ext`);
    await writeFile(csrFile, csr);
    await writeFile(
      extFile,
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
    );
    try {
      await run('openssl', ['req', '-in', csrFile, '-noout', '-verify']);
      const { pki } = this.#options;
      const { stdout } = await run('openssl', [
        ...['x509', '-req', '-in', csrFile, '-CA', pki.caFile, '-CAkey', join(pki.dir, 'ca.key')],
        ...['-set_serial', `0x${randomBytes(12).toString('hex')}`, '-days', '825', '-sha256'],
        ...['-extfile', extFile],
      ]);
      return stdout;
    } catch {
      return null;
    } finally {
      await rm(csrFile, { force: true });
      await rm(extFile, { force: true });
    }
  }

  async #register(templateName: string, payload: Buffer): Promise<void> {
    const topic = `$aws/provisioning-templates/${templateName}/provision/json`;
    const template = this.#options.templates[templateName];
    if (!template) {
      return this.#refuse(topic, 404, 'ResourceNotFound', `Template ${templateName} not found`);
    }
    const body = parse(payload);
    const token = this.#tokens.get(String(body?.certificateOwnershipToken));
    if (!token || token.expiresAt <= this.#now()) {
      return this.#refuse(
        topic,
        400,
        'InvalidCertificateOwnershipToken',
        'Certificate ownership token is invalid or expired',
      );
    }
    let parameters: Parameters = { ...((body?.parameters as Parameters | undefined) ?? {}) };
    if (template.hook) {
      const answer = await template.hook(parameters);
      if (!answer.allowProvisioning) {
        return this.#refuse(topic, 403, 'AccessDenied', 'The pre-provisioning hook refused the request');
      }
      parameters = { ...parameters, ...answer.parameterOverrides };
    }
    const thingName = (template.thingName ?? ((p: Parameters) => p.ThingName ?? ''))(parameters);
    if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(thingName)) {
      return this.#refuse(topic, 400, 'InvalidRequest', 'The template resolved no valid thing name');
    }
    const thing = this.things.get(thingName) ?? {
      thingName,
      templateName,
      parameters,
      certificateIds: new Set<string>(),
    };
    this.things.set(thingName, thing);
    thing.certificateIds.add(token.certificateId);
    const certificate = this.certificates.get(token.certificateId);
    if (certificate) {
      certificate.status = 'ACTIVE';
      certificate.thingName = thingName;
    }
    await this.#reply(`${topic}/accepted`, { deviceConfiguration: {}, thingName });
  }
}

function parse(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
