// The world of a jobs test: test PKI, mosquitto with mutual TLS, the Jobs emulator, a local HTTPS
// artifact server (able to cut a download short), a code-signing key, and connectivity windows.
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '@attache/cache';
import { createTestPki, type MosquittoBroker, startMosquitto, type TestPki } from '@attache/devkit';
import {
  ArtifactSource,
  HttpsFetcher,
  type JobArtifact,
  type JobDocument,
  type JobHandlers,
  JobsAgent,
  type JobsAgentOptions,
  type JobsWindowResult,
  type SignJobOptions,
  signJobDocument,
  type UnsignedJobDocument,
} from '@attache/jobs';
import { type BrokerLogin, JobsEmulator, SdkMqttChannel } from './jobs-emulator.js';

export const thingName = 'gw-jobs-1';

interface Tap {
  teardown(fn: () => unknown): void;
}

/** A local HTTPS server of artifacts, with Range support and a switch to cut the next download. */
export class ArtifactServer {
  readonly requests: { path: string; range: string | undefined }[] = [];
  bytesServed = 0;
  readonly #files = new Map<string, Buffer>();
  readonly #server: Server;
  #cutAt: number | undefined;

  constructor(pki: { cert: Buffer; key: Buffer }) {
    this.#server = createServer({ cert: pki.cert, key: pki.key }, (req, res) => {
      const path = req.url ?? '/';
      this.requests.push({ path, range: req.headers.range });
      const file = this.#files.get(path);
      if (!file) {
        res.writeHead(404).end();
        return;
      }
      const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
      if (from >= file.length && from > 0) {
        res.writeHead(416, { 'content-range': `bytes */${file.length}` }).end();
        return;
      }
      const body = file.subarray(from);
      const headers = { 'content-length': String(body.length), 'accept-ranges': 'bytes' };
      if (from > 0)
        res.writeHead(206, {
          ...headers,
          'content-range': `bytes ${from}-${file.length - 1}/${file.length}`,
        });
      else res.writeHead(200, headers);
      const cutAt = this.#cutAt;
      this.#cutAt = undefined;
      if (cutAt === undefined) {
        this.bytesServed += body.length;
        res.end(body);
        return;
      }
      // The window ends mid-download: part of the body, then the connection drops.
      const part = body.subarray(0, Math.max(0, cutAt - from));
      this.bytesServed += part.length;
      res.write(part, () => setTimeout(() => req.socket.destroy(), 50));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
  }

  /** Serves `content` at `/name`; returns its URL. */
  serve(name: string, content: Buffer): string {
    this.#files.set(`/${name}`, content);
    return `https://localhost:${(this.#server.address() as AddressInfo).port}/${name}`;
  }

  /** The next response stops after the file's byte `offset` and the connection is dropped. */
  cutNextAt(offset: number): void {
    this.#cutAt = offset;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** A code-signing key pair (ECDSA P-256), as AWS IoT code signing would use. */
export function signingKey(): { privateKey: KeyObject; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** The artifact section of a job document for `content`, at `url` or inline. */
export function artifactOf(content: Buffer, where: { url: string } | { inline: true }): JobArtifact {
  const source = 'url' in where ? { url: where.url } : { content: content.toString('base64') };
  return { ...source, sha256: sha256(content), size: content.length };
}

/**
 * `document` signed as its author would (`signJobDocument`, the function `scripts/sign-job.mjs`
 * runs): for `thing`, expiring in an hour, unless `options` say otherwise.
 */
export function signedJob(
  document: unknown,
  key: KeyObject,
  thing: string,
  options: Partial<SignJobOptions> = {},
): JobDocument {
  return signJobDocument(document as UnsignedJobDocument, key, {
    target: { thing },
    expiresAt: new Date(Date.now() + 3_600_000),
    ...options,
  });
}

/** One test's world for jobs. */
export class JobsWorld {
  readonly emulator: JobsEmulator;
  readonly server: ArtifactServer;
  readonly key = signingKey();
  readonly staging: FileStore;
  readonly files: FileStore;
  readonly dataDir: string;
  readonly dir: string;
  readonly gateway: BrokerLogin;
  readonly caPem: Buffer;
  /** Extra options of the gateway's agent (thing groups, running version, clock). */
  agentOptions: Partial<JobsAgentOptions> = {};

  private constructor(parts: {
    dir: string;
    emulator: JobsEmulator;
    server: ArtifactServer;
    gateway: BrokerLogin;
    caPem: Buffer;
  }) {
    this.dir = parts.dir;
    this.dataDir = join(parts.dir, 'data');
    this.emulator = parts.emulator;
    this.server = parts.server;
    this.gateway = parts.gateway;
    this.caPem = parts.caPem;
    this.staging = new FileStore({ path: join(this.dataDir, 'jobs', 'artifacts') });
    this.files = new FileStore({ path: join(this.dataDir, 'files') });
  }

  static async start(t: Tap): Promise<JobsWorld> {
    const dir = await mkdtemp(join(tmpdir(), 'attache-jobs-'));
    const pki: TestPki = await createTestPki(join(dir, 'pki'), { thingName });
    const broker: MosquittoBroker = await startMosquitto({ dir: join(dir, 'broker'), pki });
    const base = { host: broker.host, port: broker.port, caFile: pki.caFile };
    const emulator = await JobsEmulator.start(
      {
        ...base,
        certFile: pki.subscriberCertFile,
        keyFile: pki.subscriberKeyFile,
        clientId: 'jobs-emulator',
      },
      thingName,
    );
    const server = new ArtifactServer({
      cert: await readFile(pki.serverCertFile),
      key: await readFile(pki.serverKeyFile),
    });
    await server.listen();
    const gateway = {
      ...base,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
      clientId: thingName,
    };
    const world = new JobsWorld({ dir, emulator, server, gateway, caPem: await readFile(pki.caFile) });
    await mkdir(join(world.dataDir, 'jobs'), { recursive: true });
    await world.staging.open();
    await world.files.open();
    t.teardown(async () => {
      await emulator.stop();
      await server.stop();
      await broker.stop();
      await rm(dir, { recursive: true, force: true });
    });
    return world;
  }

  /** The gateway's agent for one window over `channel`. */
  agent(channel: SdkMqttChannel, handlers: JobHandlers, requestTimeoutMs = 30_000): JobsAgent {
    const fetcher = new HttpsFetcher({ ca: this.caPem, idleTimeoutMs: 5000 });
    return new JobsAgent({
      thingName,
      channel,
      stateFile: join(this.dataDir, 'jobs', 'state.json'),
      artifacts: new ArtifactSource({ store: this.staging, fetcher }),
      publicKeyPem: this.key.publicKeyPem,
      handlers,
      requestTimeoutMs,
      ...this.agentOptions,
    });
  }

  /** One connectivity window: connect as the gateway, run the jobs, disconnect. */
  async window(handlers: JobHandlers, requestTimeoutMs?: number): Promise<JobsWindowResult> {
    const channel = await SdkMqttChannel.connect(this.gateway);
    try {
      return await this.agent(channel, handlers, requestTimeoutMs).runWindow();
    } finally {
      await channel.close();
    }
  }

  /** The artifact section for `content`, at `url` or inline. */
  artifact(content: Buffer, where: { url: string } | { inline: true }): JobArtifact {
    return artifactOf(content, where);
  }

  /** Queues a job whose document is signed with the world's key (for this thing, for an hour). */
  addJob(jobId: string, document: unknown, options?: Partial<SignJobOptions>): Promise<void> {
    return this.emulator.addJob(jobId, signedJob(document, this.key.privateKey, thingName, options));
  }
}
