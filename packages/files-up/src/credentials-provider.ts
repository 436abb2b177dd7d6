import { request } from 'node:https';
import { GatewayError } from '@attache/core';

/** Temporary AWS credentials of a role alias. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** When they expire, ms since the epoch. */
  expiresAt: number;
}

/** Options of {@link CredentialsProviderClient}. */
export interface CredentialsProviderOptions {
  /** The account's credentials endpoint (`aws iot describe-endpoint --endpoint-type iot:CredentialProvider`), `host` or `host:port`. */
  endpoint: string;
  /** The role alias the thing's policy lets it assume (`iot:AssumeRoleWithCertificate`). */
  roleAlias: string;
  /** The thing name, sent as `x-amzn-iot-thingname` (needed for policy variables and prefix scoping). */
  thingName: string;
  /** The thing's certificate and key (PEM): the same as for MQTT. */
  cert: Buffer;
  key: Buffer;
  /** Trusted CAs (PEM); default Node's (Amazon Root CA 1-4 are in it). */
  ca?: Buffer;
  /** Request timeout in ms (default 15,000). */
  timeoutMs?: number;
  /** Credentials are fetched again this long before they expire, ms (default 300,000). */
  refreshBeforeMs?: number;
  /** Wall-clock time (default Date.now). */
  now?: () => number;
  /** Aborts a request in flight (the window's deadline). */
  signal?: AbortSignal;
}

interface ProviderReply {
  credentials?: {
    accessKeyId?: string;
    secretAccessKey?: string;
    sessionToken?: string;
    expiration?: string;
  };
}

/**
 * The AWS IoT credentials provider: an HTTPS GET of `/role-aliases/<alias>/credentials` over mutual
 * TLS with the thing's certificate, answered with temporary credentials of the alias's role.
 * Credentials are kept in memory only and fetched again shortly before they expire.
 */
export class CredentialsProviderClient {
  readonly #options: CredentialsProviderOptions;
  #cached: AwsCredentials | undefined;

  constructor(options: CredentialsProviderOptions) {
    for (const name of ['endpoint', 'roleAlias', 'thingName'] as const) {
      if (typeof options?.[name] !== 'string' || options[name] === '') {
        throw new TypeError(`"${name}" must be a non-empty string`);
      }
    }
    this.#options = options;
  }

  /**
   * Valid credentials: the cached ones, or new ones from the provider. Rejects ATTACHE_FILE_UPLOAD
   * when the provider refuses (its status and error message in the message: a certificate not
   * attached to the thing, a policy without AssumeRoleWithCertificate, an unknown alias) or the reply
   * is malformed, ATTACHE_TIMEOUT when it does not answer in time.
   */
  async credentials(): Promise<AwsCredentials> {
    const now = (this.#options.now ?? Date.now)();
    if (this.#cached && this.#cached.expiresAt - (this.#options.refreshBeforeMs ?? 300_000) > now) {
      return this.#cached;
    }
    const reply = await this.#get();
    const c = reply.credentials;
    const expiresAt = Date.parse(c?.expiration ?? '');
    if (!c?.accessKeyId || !c.secretAccessKey || !c.sessionToken || Number.isNaN(expiresAt)) {
      throw new GatewayError('ATTACHE_FILE_UPLOAD', 'credentials provider: malformed reply');
    }
    this.#cached = {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiresAt,
    };
    return this.#cached;
  }

  /** Forgets the cached credentials (S3 said they expired or were refused). */
  forget(): void {
    this.#cached = undefined;
  }

  #get(): Promise<ProviderReply> {
    const { endpoint, roleAlias, thingName, cert, key, ca, timeoutMs = 15_000, signal } = this.#options;
    const url = new URL(`https://${endpoint}/role-aliases/${encodeURIComponent(roleAlias)}/credentials`);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'GET',
          cert,
          key,
          ...(ca ? { ca } : {}),
          headers: { 'x-amzn-iot-thingname': thingName },
          timeout: timeoutMs,
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              const message = /"message"\s*:\s*"([^"]{0,200})"/.exec(text)?.[1] ?? '';
              reject(
                new GatewayError(
                  'ATTACHE_FILE_UPLOAD',
                  `credentials provider refused (${res.statusCode}${message ? `: ${message}` : ''})`,
                ),
              );
              return;
            }
            try {
              resolve(JSON.parse(text) as ProviderReply);
            } catch (err) {
              reject(
                new GatewayError('ATTACHE_FILE_UPLOAD', 'credentials provider: reply is not JSON', {
                  cause: err,
                }),
              );
            }
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new GatewayError('ATTACHE_TIMEOUT', 'credentials provider request timed out')),
      );
      req.on('error', (err) =>
        reject(
          err instanceof GatewayError
            ? err
            : new GatewayError('ATTACHE_FILE_UPLOAD', `credentials provider: ${err.message}`, { cause: err }),
        ),
      );
      req.end();
    });
  }
}
