// A fleet on one machine: the test mosquitto, the Fleet Provisioning emulator with the template
// `attache-fleet` (thing `attache-<SerialNumber>`, an optional allow-list as pre-provisioning hook),
// one claim shared by the fleet, and boxes: each a real `attache run` with its own serial number,
// pty and simulated device, configured with the claim only.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestPki,
  issueClientCertificate,
  LineDeviceSimulator,
  type MosquittoBroker,
  openPtyPair,
  type PtyPair,
  profileFormat,
  startMosquitto,
  subscribeTopic,
  type TestPki,
  type TopicSubscriber,
} from '@attache/devkit';
import { FleetProvisioningEmulator } from './provisioning-emulator.js';
import { attache, type CommandResult, GatewayProcess } from './stack.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

export const templateName = 'attache-fleet';

/** One box of the fleet. */
export class FleetBox {
  readonly name: string;
  readonly serial: string;
  readonly dir: string;
  readonly configPath: string;
  readonly device: LineDeviceSimulator;
  readonly pty: PtyPair;
  readonly gateways: GatewayProcess[] = [];

  constructor(parts: {
    name: string;
    serial: string;
    dir: string;
    device: LineDeviceSimulator;
    pty: PtyPair;
  }) {
    this.name = parts.name;
    this.serial = parts.serial;
    this.dir = parts.dir;
    this.configPath = join(parts.dir, 'config.json');
    this.device = parts.device;
    this.pty = parts.pty;
  }

  /** The thing this box becomes (`gateway.id`). */
  get thingName(): string {
    return `attache-${this.serial}`;
  }

  get identityDir(): string {
    return join(this.dir, 'identity');
  }

  get stateFile(): string {
    return join(this.dir, 'data', 'provisioning', 'state.json');
  }

  /** `attache run` with this box's serial number. */
  start(): GatewayProcess {
    const gateway = new GatewayProcess(this.configPath, ['env', `ATTACHE_SERIAL_NUMBER=${this.serial}`]);
    this.gateways.push(gateway);
    return gateway;
  }

  /** `attache <args> --config <this box's config>`. */
  run(...args: string[]): Promise<CommandResult> {
    return attache([...args, '--config', this.configPath], { ATTACHE_SERIAL_NUMBER: this.serial });
  }

  /** `attache sync --json`: its exit code and the window's result. */
  async sync(): Promise<{ code: number; result: Record<string, unknown> }> {
    const { code, stdout, stderr } = await this.run('sync', '--json');
    try {
      return { code, result: JSON.parse(stdout) as Record<string, unknown> };
    } catch {
      throw new Error(`attache sync printed no result (${code}): ${stdout}${stderr}`);
    }
  }

  /** The box's issued certificate (checked to belong to its key) and its key file's mode. */
  async identity(): Promise<{ certificate: X509Certificate; keyMode: number }> {
    const key = createPrivateKey(await readFile(join(this.identityDir, 'device.key')));
    const certificate = new X509Certificate(await readFile(join(this.identityDir, 'device.crt')));
    if (!certificate.checkPrivateKey(key)) throw new Error('the certificate is not for the box key');
    return { certificate, keyMode: (await stat(join(this.identityDir, 'device.key'))).mode & 0o777 };
  }

  /** Polls `attache status --json` until the backlog holds `records` (readings stored). */
  async backlogUntil(records: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { stdout } = await this.run('status', '--json');
      const status = JSON.parse(stdout || '{}') as { backlog?: { records: number } };
      if (status.backlog?.records === records) return;
      if (Date.now() > deadline) throw new Error(`backlog never reached ${records}: ${stdout}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The provisioning state file, parsed (undefined when there is none). */
  async state(): Promise<Record<string, unknown> | undefined> {
    return JSON.parse(await readFile(this.stateFile, 'utf8').catch(() => 'null')) ?? undefined;
  }

  async stop(): Promise<void> {
    for (const g of this.gateways) await g.stop();
    this.device.stop();
    await this.device.close();
    await this.pty.close();
  }
}

/** Options of {@link FleetWorld.start}. */
export interface FleetWorldOptions {
  /** The cloud no longer has the fleet's template (the claim's policy still names it). */
  templateDeleted?: boolean;
  /** Serial numbers the pre-provisioning hook refuses. */
  refuse?: string[];
}

/** The broker, the emulator, the claim and the boxes of one test. */
export class FleetWorld {
  readonly dir: string;
  readonly pki: TestPki;
  readonly broker: MosquittoBroker;
  readonly emulator: FleetProvisioningEmulator;
  readonly claim: { certFile: string; keyFile: string };
  readonly #boxes: FleetBox[] = [];
  readonly #subscribers: TopicSubscriber[] = [];

  private constructor(parts: {
    dir: string;
    pki: TestPki;
    broker: MosquittoBroker;
    emulator: FleetProvisioningEmulator;
    claim: { certFile: string; keyFile: string };
  }) {
    this.dir = parts.dir;
    this.pki = parts.pki;
    this.broker = parts.broker;
    this.emulator = parts.emulator;
    this.claim = parts.claim;
  }

  static async start(t: Tap, options: FleetWorldOptions = {}): Promise<FleetWorld> {
    const dir = await mkdtemp(join(tmpdir(), 'attache-fleet-'));
    const pki = await createTestPki(join(dir, 'pki'), { thingName: 'unused' });
    const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
    const claim = await issueClientCertificate(pki, 'claim', 'claim');
    const refused = new Set(options.refuse ?? []);
    const emulator = await FleetProvisioningEmulator.start({
      pki,
      login: {
        host: broker.host,
        port: broker.port,
        certFile: pki.subscriberCertFile,
        keyFile: pki.subscriberKeyFile,
        caFile: pki.caFile,
        clientId: `fleet-provisioning-${process.pid}`,
      },
      templates: options.templateDeleted
        ? {}
        : {
            [templateName]: {
              thingName: (p) => `attache-${p.SerialNumber}`,
              hook: (p) => ({ allowProvisioning: !refused.has(p.SerialNumber ?? '') }),
            },
          },
    });
    const world = new FleetWorld({ dir, pki, broker, emulator, claim });
    t.teardown(() => world.stop());
    return world;
  }

  /** A box with the fleet's config template and the claim, nothing of its own. */
  async box(serial: string): Promise<FleetBox> {
    const dir = join(this.dir, `box-${serial}`);
    await mkdir(dir, { recursive: true });
    const pty = await openPtyPair(join(dir, 'pty'));
    const device = new LineDeviceSimulator({ path: pty.devicePath, profile: 'nonin' });
    await device.open();
    const box = new FleetBox({ name: `box-${serial}`, serial, dir, device, pty });
    this.#boxes.push(box);
    await copyFile(this.claim.certFile, join(dir, 'claim.crt'));
    await copyFile(this.claim.keyFile, join(dir, 'claim.key'));
    const config = {
      version: 1,
      gateway: { id: box.thingName, dataDir: join(dir, 'data') },
      log: { level: 'info' },
      cache: { commitIntervalMs: 2 },
      devices: [
        {
          id: 'spo2-bed7',
          adapter: 'rs232',
          port: { path: pty.gatewayPath, stopBits: 2, reconnectMs: 200 },
          format: profileFormat('nonin'),
        },
      ],
      uplink: {
        endpoint: this.broker.host,
        port: this.broker.port,
        caFile: this.pki.caFile,
        certFile: join(box.identityDir, 'device.crt'),
        keyFile: join(box.identityDir, 'device.key'),
        shadowName: '',
        connectTimeoutMs: 40_000,
        trustedTime: { enabled: false },
        provisioning: {
          claimCertFile: join(dir, 'claim.crt'),
          claimKeyFile: join(dir, 'claim.key'),
          templateName,
          parameters: { Site: 'ward-3' },
        },
      },
    };
    await writeFile(box.configPath, JSON.stringify(config, null, 2));
    return box;
  }

  /** Subscribes (as the dashboard) to a thing's telemetry. */
  async subscribe(thingName: string): Promise<TopicSubscriber> {
    const subscriber = await subscribeTopic({
      broker: this.broker,
      pki: this.pki,
      topic: `dt/attache/${thingName}/telemetry`,
    });
    this.#subscribers.push(subscriber);
    return subscriber;
  }

  async stop(): Promise<void> {
    for (const box of this.#boxes) await box.stop();
    for (const s of this.#subscribers) await s.stop();
    await this.emulator.stop();
    await this.broker.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
