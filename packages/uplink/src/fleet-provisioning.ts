import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger, ProvisioningConfig, UplinkConfig } from '@attache/core';
import { GatewayError, isGatewayError, mkdirDurably, removeDurably, writeDurably } from '@attache/core';
import type { iotidentity } from 'aws-iot-device-sdk-v2';
import { MqttSession } from './mqtt-session.js';
import { type FleetProvisioningState, readFleetProvisioning, readJson } from './provisioning-state.js';
import { probeTls } from './tls-probe.js';

/** A certificate issued but not yet registered, kept so that a resumed window registers it. */
interface Pending {
  certificateId: string;
  certificatePem: string;
  certificateOwnershipToken: string;
  /** When it was issued (the box's clock): its ownership token is valid for an hour. */
  issuedAt?: string;
}

const probeTimeoutMs = 15_000;

/** AWS: an ownership token is valid for one hour; past this, a refusal may be the token's. */
const tokenStaleMs = 50 * 60_000;

/** True when `pending`'s token may have expired (or its age is unknown). */
function mayHaveExpired(pending: Pending): boolean {
  const issued = Date.parse(pending.issuedAt ?? '');
  return Number.isNaN(issued) || Date.now() - issued > tokenStaleMs;
}

/** Options of {@link provisionByClaim}. */
export interface ClaimProvisioningOptions {
  /** The thing name this box must become (`gateway.id`): the CSR's CN and the `ThingName` parameter. */
  gatewayId: string;
  /** The uplink: its `certFile`/`keyFile` are created here; `provisioning` must be set. */
  config: UplinkConfig;
  /** Where `state.json` and the pending certificate are kept (created when missing). */
  stateDir: string;
  /** The board's serial number (`SerialNumber` parameter); null when the box has none. */
  serialNumber: string | null;
  log: Logger;
}

const run = promisify(execFile);

type IdentityClient = iotidentity.IotIdentityClientv2;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The cloud's error shape (`statusCode`, `errorCode`, `errorMessage`) of an SDK ServiceError, if any. */
function refusalOf(err: unknown): string | undefined {
  const modeled = (err as { modeledError?: Record<string, unknown> } | null)?.modeledError;
  if (!modeled || typeof modeled !== 'object') return undefined;
  return `${String(modeled.errorCode ?? 'Refused')} (${String(modeled.statusCode ?? '?')}): ${String(modeled.errorMessage ?? '')}`;
}

/** One provisioning attempt; see {@link provisionByClaim}. */
class ClaimProvisioning {
  readonly #o: ClaimProvisioningOptions;
  readonly #p: ProvisioningConfig;
  readonly #stateFile: string;
  readonly #pendingFile: string;
  #state: FleetProvisioningState;

  constructor(options: ClaimProvisioningOptions, provisioning: ProvisioningConfig) {
    this.#o = options;
    this.#p = provisioning;
    this.#stateFile = join(options.stateDir, 'state.json');
    this.#pendingFile = join(options.stateDir, 'pending.json');
    this.#state = {
      state: 'provisioning',
      step: 'started',
      at: new Date().toISOString(),
      thingName: null,
      certificateId: null,
      reason: null,
    };
  }

  async #save(change: Partial<FleetProvisioningState>): Promise<void> {
    this.#state = { ...this.#state, ...change, at: new Date().toISOString() };
    await writeDurably(this.#stateFile, `${JSON.stringify(this.#state, null, 2)}\n`, { mode: 0o644 });
  }

  async run(): Promise<void> {
    const { config, stateDir, log } = this.#o;
    await mkdirDurably(stateDir);
    this.#state = (await readFleetProvisioning(stateDir)) ?? this.#state;
    // Killed after the certificate was stored: only the bookkeeping is left.
    if (await exists(config.certFile)) return this.#finish();
    try {
      await this.#provision();
    } catch (err) {
      const refusal = isGatewayError(err, 'ATTACHE_PROVISIONING') ? err.message : undefined;
      await this.#save({
        state: refusal ? 'refused' : 'provisioning',
        reason: refusal ?? `${(err as Error).message}; retried in the next window`,
      });
      throw err;
    }
    await this.#finish();
    log.info({ thingName: this.#state.thingName }, 'provisioned by claim');
  }

  async #provision(): Promise<void> {
    const { config, log } = this.#o;
    if (this.#o.serialNumber === null) {
      throw new GatewayError('ATTACHE_PROVISIONING', 'this box has no serial number to register with');
    }
    if (!(await exists(this.#p.claimCertFile)) || !(await exists(this.#p.claimKeyFile))) {
      throw new GatewayError('ATTACHE_PROVISIONING', 'the claim certificate or key is missing');
    }
    await mkdirDurably(dirname(config.keyFile));
    await mkdirDurably(dirname(config.certFile));
    if (!(await exists(config.keyFile))) {
      // The private key is made here and never leaves the box; a key left by an interrupted
      // attempt is reused, so no key is ever orphaned.
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      await writeDurably(config.keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      log.info('key pair made');
    }
    if (this.#state.step === 'started') await this.#save({ step: 'key' });
    const claim = { ...config, certFile: this.#p.claimCertFile, keyFile: this.#p.claimKeyFile };
    // A precise reason in milliseconds (a revoked claim, a wrong CA) where the SDK is slow and vague.
    await probeTls(claim, Math.min(probeTimeoutMs, config.connectTimeoutMs));
    const session = await MqttSession.create({
      // The claim policy allows only client ids starting `claim-`, so a claim holder cannot take
      // over a gateway's own client id (AWS IoT drops the older of two connections with one id).
      gatewayId: `claim-${this.#o.gatewayId}`,
      config: claim,
      log: log.child({ credential: 'claim' }),
    });
    // CommonJS: see MqttSession.create.
    const sdk = (await import('aws-iot-device-sdk-v2')).default;
    let identity: IdentityClient | undefined;
    try {
      await session.connect(config.connectTimeoutMs);
      identity = sdk.iotidentity.IotIdentityClientv2.newFromMqtt5(session.client, {
        maxRequestResponseSubscriptions: 2,
        maxStreamingSubscriptions: 0,
        operationTimeoutInSeconds: Math.ceil(this.#p.timeoutMs / 1000),
      });
      await this.#register(identity);
    } finally {
      identity?.close();
      await session.stop();
      session.close();
    }
  }

  /** CreateCertificateFromCsr (unless a resumed attempt has its certificate), then RegisterThing. */
  async #register(identity: IdentityClient): Promise<void> {
    const { config, log, gatewayId } = this.#o;
    let pending = await readJson<Pending>(this.#pendingFile);
    if (pending && !(await this.#forKey(pending.certificatePem))) {
      log.warn('the kept certificate is not for the key on the box; asking for a new one');
      pending = undefined;
    }
    // A kept token may have expired: one fresh certificate, then the cloud's word holds. A refusal of a
    // recent token is the cloud's answer (e.g. the hook): asking again must not pile up certificates.
    let kept = pending !== undefined && mayHaveExpired(pending);
    for (;;) {
      pending ??= await this.#issue(identity);
      const parameters = {
        ...this.#p.parameters,
        SerialNumber: this.#o.serialNumber ?? '',
        ThingName: gatewayId,
      };
      let thingName: string | undefined;
      try {
        const response = await identity.registerThing({
          templateName: this.#p.templateName,
          certificateOwnershipToken: pending.certificateOwnershipToken,
          parameters,
        });
        thingName = response.thingName;
      } catch (err) {
        const refusal = refusalOf(err);
        if (refusal === undefined) throw this.#failure('RegisterThing', err);
        if (!kept) throw new GatewayError('ATTACHE_PROVISIONING', `RegisterThing refused: ${refusal}`);
        log.warn({ refusal }, 'the kept certificate was refused; asking for a new one');
        await removeDurably(this.#pendingFile);
        pending = undefined;
        kept = false;
        continue;
      }
      if (thingName !== gatewayId) {
        throw new GatewayError(
          'ATTACHE_PROVISIONING',
          `the provisioning template named the thing "${thingName ?? ''}", but gateway.id is "${gatewayId}": make the template name it from the ThingName parameter (or SerialNumber as gateway.id does)`,
        );
      }
      await writeDurably(config.certFile, pending.certificatePem, { mode: 0o644 });
      await this.#save({ step: 'registered', thingName, certificateId: pending.certificateId });
      return;
    }
  }

  async #issue(identity: IdentityClient): Promise<Pending> {
    const { config, gatewayId, log } = this.#o;
    const { stdout: csr } = await run('openssl', [
      'req',
      '-new',
      '-key',
      config.keyFile,
      '-subj',
      `/CN=${gatewayId}`,
    ]);
    let response: Awaited<ReturnType<typeof identity.createCertificateFromCsr>>;
    try {
      response = await identity.createCertificateFromCsr({ certificateSigningRequest: csr });
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal === undefined) throw this.#failure('CreateCertificateFromCsr', err);
      throw new GatewayError('ATTACHE_PROVISIONING', `CreateCertificateFromCsr refused: ${refusal}`);
    }
    const { certificateId, certificatePem, certificateOwnershipToken } = response;
    if (!certificateId || !certificatePem || !certificateOwnershipToken) {
      throw new GatewayError(
        'ATTACHE_PROVISIONING',
        'CreateCertificateFromCsr answered without a certificate',
      );
    }
    if (!(await this.#forKey(certificatePem))) {
      throw new GatewayError('ATTACHE_PROVISIONING', "the issued certificate is not for this box's key");
    }
    const pending = {
      certificateId,
      certificatePem,
      certificateOwnershipToken,
      issuedAt: new Date().toISOString(),
    };
    await writeDurably(this.#pendingFile, JSON.stringify(pending));
    await this.#save({ step: 'certificate', certificateId });
    log.info({ certificateId }, 'certificate issued');
    return pending;
  }

  /** True when `certificatePem` is a certificate for the key in `config.keyFile`. */
  async #forKey(certificatePem: string): Promise<boolean> {
    try {
      const key = createPrivateKey(await readFile(this.#o.config.keyFile));
      return new X509Certificate(certificatePem).checkPrivateKey(key);
    } catch {
      return false;
    }
  }

  #failure(operation: string, err: unknown): GatewayError {
    return new GatewayError('ATTACHE_TIMEOUT', `${operation}: ${(err as Error).message}`, { cause: err });
  }

  /** Marks the box provisioned, then deletes the pending certificate and the claim. */
  async #finish(): Promise<void> {
    if (this.#state.state !== 'provisioned') {
      await this.#save({
        state: 'provisioned',
        step: 'registered',
        reason: null,
        thingName: this.#state.thingName ?? this.#o.gatewayId,
      });
    }
    await removeDurably(this.#pendingFile);
    for (const file of [this.#p.claimCertFile, this.#p.claimKeyFile]) {
      await removeDurably(file).catch((err: unknown) =>
        this.#o.log.warn({ err }, 'could not delete the claim: delete it by hand'),
      );
    }
  }
}

/**
 * Makes sure the box has its own identity before a window uploads: when `config.certFile` does not
 * exist, provisions the box by claim (AWS IoT Fleet Provisioning, with the SDK's `iotidentity`
 * client over a connection made with the claim): makes the key pair in `config.keyFile` (mode
 * 0600; reused when an interrupted attempt left one), CreateCertificateFromCsr, RegisterThing with
 * `SerialNumber`, `ThingName` (= `gatewayId`) and the configured parameters, then writes the
 * certificate to `config.certFile` and deletes the claim. Each step is written durably to
 * `<stateDir>/state.json` before the next, so an attempt cut off anywhere resumes in the next
 * window without a second key or thing. Resolves at once when the certificate exists (and finishes
 * the bookkeeping of an attempt cut off after it was stored). Rejects `ATTACHE_PROVISIONING` when
 * the cloud refuses (state `refused`, with its reason), `ATTACHE_UPLINK_CONNECT` or
 * `ATTACHE_TIMEOUT` when it cannot be reached (state stays `provisioning`).
 */
export async function provisionByClaim(options: ClaimProvisioningOptions): Promise<void> {
  const provisioning = options.config.provisioning;
  if (!provisioning) throw new TypeError('"config.provisioning" must be set');
  await new ClaimProvisioning(options, provisioning).run();
}
