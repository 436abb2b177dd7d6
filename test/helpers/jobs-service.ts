// The world of a jobs test against a real `attache run`: the end-to-end stack (PKI, mosquitto with
// mutual TLS, a pty with a Nonin simulator, the config file) plus the Jobs emulator on that broker,
// the HTTPS artifact server and a code-signing key whose public half the config names.
import type { KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobArtifact, SignJobOptions } from '@attache/jobs';
import { type EmulatedExecution, JobsEmulator } from './jobs-emulator.js';
import { ArtifactServer, artifactOf, signedJob, signingKey } from './jobs-fixtures.js';
import {
  bundleOf,
  InstallerSocket,
  installRoot,
  ReleaseSupervisor,
  releaseTree,
  type SupervisedStart,
} from './jobs-supervisor.js';
import { Stack, thingName } from './stack.js';

interface Tap {
  teardown(fn: () => unknown): void;
}

/** The document of a config-update job that replaces the whole config file with `artifact`. */
export const replace = (artifact: unknown) => ({
  schemaVersion: 2,
  operation: 'config-update',
  mode: 'replace',
  artifact,
});

/** A device entry of the config, as a config-update test edits it. */
export type Device = { port: Record<string, unknown> };

/** A stack whose config takes AWS IoT Jobs, with the cloud side of them. */
export interface ServiceWorld {
  stack: Stack;
  emulator: JobsEmulator;
  server: ArtifactServer;
  key: { privateKey: KeyObject; publicKeyPem: string };
  /** The config file's content as written (with `jobs`). */
  config: Record<string, unknown>;
  /** The artifact section for `content`, at `url` or inline. */
  artifact(content: Buffer, where: { url: string } | { inline: true }): JobArtifact;
  /** Queues a job whose document is signed with the world's key (for this thing, for an hour). */
  addJob(jobId: string, document: unknown, options?: Partial<SignJobOptions>): Promise<void>;
}

export async function serviceWorld(t: Tap): Promise<ServiceWorld> {
  const stack = await Stack.start(t);
  const { pki, broker } = stack;
  const emulator = await JobsEmulator.start(
    {
      host: broker.host,
      port: broker.port,
      caFile: pki.caFile,
      certFile: pki.subscriberCertFile,
      keyFile: pki.subscriberKeyFile,
      clientId: 'jobs-emulator',
    },
    thingName,
  );
  t.teardown(() => emulator.stop());
  const server = new ArtifactServer({
    cert: await readFile(pki.serverCertFile),
    key: await readFile(pki.serverKeyFile),
  });
  await server.listen();
  t.teardown(() => server.stop());
  const key = signingKey();
  const publicKeyFile = join(stack.dir, 'signing.pub.pem');
  await writeFile(publicKeyFile, key.publicKeyPem);
  const config = stack.config() as Record<string, unknown>;
  config.jobs = { publicKeyFile, caFile: pki.caFile, requestTimeoutMs: 10_000 };
  await stack.writeConfig(config);
  return {
    stack,
    emulator,
    server,
    key,
    config,
    artifact: artifactOf,
    addJob: (jobId, document, options) =>
      emulator.addJob(jobId, signedJob(document, key.privateKey, thingName, options)),
  };
}

/**
 * A service world with an install root running release 1.0.0 under the supervisor, and a
 * software-update job queued for release `version` (`broken`: one that exits 1 at once). As on the
 * appliance, the service does not install it: it asks the root release installer (listening on its
 * socket, with the world's signing key and a provisioning record naming this thing), which installs
 * it in `<dir>/store` and switches `current`.
 */
export async function releaseWorld(
  t: Tap,
  version: string,
  kind: 'working' | 'broken',
): Promise<
  ServiceWorld & {
    root: string;
    store: string;
    supervisor: ReleaseSupervisor;
    first: SupervisedStart;
    execution: () => EmulatedExecution | undefined;
  }
> {
  const world = await serviceWorld(t);
  const { stack, emulator, server, artifact, addJob } = world;
  const root = await installRoot(stack.dir, '1.0.0');
  const store = join(stack.dir, 'store');
  const provisioningFile = join(stack.dir, 'provisioning.json');
  await writeFile(provisioningFile, JSON.stringify({ state: 'provisioned', gatewayId: thingName }));
  const installer = await InstallerSocket.start({
    dir: stack.dir,
    root,
    store,
    keyFile: join(stack.dir, 'signing.pub.pem'),
    provisioningFile,
  });
  t.teardown(() => installer.stop());
  const content = await bundleOf(await releaseTree(stack.dir, version, kind));
  const url = server.serve(`attache-${version}.tar.gz`, content);
  await addJob(`sw-${version}`, {
    schemaVersion: 2,
    operation: 'software-update',
    version,
    artifact: artifact(content, { url }),
  });
  const supervisor = new ReleaseSupervisor({
    root,
    trialFile: join(stack.dir, 'data', 'jobs', 'release-trial'),
    configPath: stack.configPath,
    installer: installer.socket,
  });
  t.teardown(() => supervisor.stop());
  supervisor.start();
  const first = await supervisor.waitForLog((l) => l.msg === 'gateway started');
  return {
    ...world,
    root,
    store,
    supervisor,
    first,
    execution: () => emulator.executions.get(`sw-${version}`),
  };
}
