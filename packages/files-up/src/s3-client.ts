import { request } from 'node:https';
import { GatewayError } from '@attache/core';
import aws4 from 'aws4';
import type { AwsCredentials } from './credentials-provider.js';

/** Options of {@link S3UploadClient}. */
export interface S3UploadClientOptions {
  /** The bucket's region, e.g. `eu-central-1` (the gateway route's region: data residency). */
  region: string;
  bucket: string;
  /** Another endpoint (`https://host:port`, path-style requests), e.g. a VPC endpoint or a test server. Default: `https://<bucket>.s3.<region>.amazonaws.com`. */
  endpoint?: string;
  /** Trusted CAs (PEM) for `endpoint`; default Node's. */
  ca?: Buffer;
  /** Per-request timeout in ms (default 60,000). */
  timeoutMs?: number;
  /** Where credentials come from (called before each request). */
  credentials: () => Promise<AwsCredentials>;
  /** Aborts a request in flight (the window's deadline). */
  signal?: AbortSignal;
}

/** A part S3 took, as CompleteMultipartUpload needs it. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
  /** base64 SHA-256 of the part, as S3 confirmed it. */
  checksumSha256: string;
}

interface S3Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An S3 error as ATTACHE_FILE_UPLOAD, with S3's `Code` (BadDigest, AccessDenied, NoSuchUpload…) in `s3Code`. */
export class S3Error extends GatewayError {
  readonly s3Code: string;
  readonly status: number;
  constructor(operation: string, reply: S3Reply) {
    const s3Code = /<Code>([^<]{1,100})<\/Code>/.exec(reply.body)?.[1] ?? `HTTP${reply.status}`;
    super('ATTACHE_FILE_UPLOAD', `S3 ${operation} refused: ${reply.status} ${s3Code}`);
    this.s3Code = s3Code;
    this.status = reply.status;
  }
}

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * The S3 requests a file upload needs, each signed with SigV4 (aws4) using the temporary
 * credentials and carrying `x-amz-checksum-sha256`, which S3 verifies against the bytes it received
 * (400 BadDigest when they differ). Every method rejects {@link S3Error} (ATTACHE_FILE_UPLOAD) on an
 * S3 error, ATTACHE_TIMEOUT when S3 does not answer in time.
 */
export class S3UploadClient {
  readonly #options: S3UploadClientOptions;
  readonly #base: URL;
  readonly #pathStyle: boolean;

  constructor(options: S3UploadClientOptions) {
    for (const name of ['region', 'bucket'] as const) {
      if (typeof options?.[name] !== 'string' || options[name] === '') {
        throw new TypeError(`"${name}" must be a non-empty string`);
      }
    }
    this.#options = options;
    this.#pathStyle = options.endpoint !== undefined;
    this.#base = new URL(options.endpoint ?? `https://${options.bucket}.s3.${options.region}.amazonaws.com`);
  }

  /** PutObject; resolves S3's `x-amz-checksum-sha256` (base64) of what it stored. */
  async putObject(
    key: string,
    body: Buffer,
    checksumSha256: string,
    metadata: Record<string, string>,
  ): Promise<string> {
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'x-amz-checksum-sha256': checksumSha256,
      'x-amz-server-side-encryption': 'aws:kms',
    };
    for (const [name, value] of Object.entries(metadata)) headers[`x-amz-meta-${name}`] = value;
    const reply = await this.#send('PutObject', 'PUT', key, '', headers, body);
    return String(reply.headers['x-amz-checksum-sha256'] ?? '');
  }

  /** CreateMultipartUpload with the SHA-256 checksum algorithm; resolves the upload id. */
  async createMultipartUpload(key: string, metadata: Record<string, string>): Promise<string> {
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'x-amz-checksum-algorithm': 'SHA256',
      'x-amz-server-side-encryption': 'aws:kms',
    };
    for (const [name, value] of Object.entries(metadata)) headers[`x-amz-meta-${name}`] = value;
    const reply = await this.#send(
      'CreateMultipartUpload',
      'POST',
      key,
      'uploads=',
      headers,
      Buffer.alloc(0),
    );
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(reply.body)?.[1];
    if (!uploadId)
      throw new GatewayError('ATTACHE_FILE_UPLOAD', 'S3 CreateMultipartUpload: no UploadId in the reply');
    return uploadId;
  }

  /** UploadPart; resolves the part as S3 confirmed it (its ETag and SHA-256). */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Buffer,
    checksumSha256: string,
  ): Promise<UploadedPart> {
    const query = `partNumber=${partNumber}&uploadId=${encodeURIComponent(uploadId)}`;
    const headers = { 'x-amz-checksum-sha256': checksumSha256 };
    const reply = await this.#send('UploadPart', 'PUT', key, query, headers, body);
    return {
      partNumber,
      etag: String(reply.headers.etag ?? ''),
      checksumSha256: String(reply.headers['x-amz-checksum-sha256'] ?? ''),
    };
  }

  /** CompleteMultipartUpload; resolves S3's ChecksumSHA256 of the object (`<base64>-<parts>`). */
  async completeMultipartUpload(key: string, uploadId: string, parts: UploadedPart[]): Promise<string> {
    const body = Buffer.from(
      `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts
        .map(
          (p) =>
            `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${xmlEscape(p.etag)}</ETag><ChecksumSHA256>${p.checksumSha256}</ChecksumSHA256></Part>`,
        )
        .join('')}</CompleteMultipartUpload>`,
    );
    const query = `uploadId=${encodeURIComponent(uploadId)}`;
    const reply = await this.#send(
      'CompleteMultipartUpload',
      'POST',
      key,
      query,
      { 'content-type': 'application/xml' },
      body,
    );
    // S3 may answer 200 with an <Error> body when the completion failed after it started.
    if (reply.body.includes('<Error>')) throw new S3Error('CompleteMultipartUpload', reply);
    return /<ChecksumSHA256>([^<]+)<\/ChecksumSHA256>/.exec(reply.body)?.[1] ?? '';
  }

  async #send(
    operation: string,
    method: string,
    key: string,
    query: string,
    headers: Record<string, string>,
    body: Buffer,
  ): Promise<S3Reply> {
    const creds = await this.#options.credentials();
    const objectPath = key.split('/').map(encodeURIComponent).join('/');
    const path = `${this.#pathStyle ? `${this.#base.pathname.replace(/\/$/, '')}/${this.#options.bucket}` : ''}/${objectPath}${query ? `?${query}` : ''}`;
    const signed = aws4.sign(
      {
        method,
        hostname: this.#base.hostname,
        ...(this.#base.port ? { port: Number(this.#base.port) } : {}),
        path,
        service: 's3',
        region: this.#options.region,
        headers: { ...headers, 'content-length': String(body.length) },
        body,
      },
      {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        sessionToken: creds.sessionToken,
      },
    );
    const reply = await this.#request(operation, signed as RequestOptionsWithBody, body);
    if (reply.status < 200 || reply.status >= 300) throw new S3Error(operation, reply);
    return reply;
  }

  #request(operation: string, signed: RequestOptionsWithBody, body: Buffer): Promise<S3Reply> {
    const { ca, timeoutMs = 60_000, signal } = this.#options;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          protocol: 'https:',
          hostname: signed.hostname,
          port: signed.port,
          method: signed.method,
          path: signed.path,
          headers: signed.headers,
          timeout: timeoutMs,
          ...(ca ? { ca } : {}),
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      req.on('timeout', () => req.destroy(new GatewayError('ATTACHE_TIMEOUT', `S3 ${operation} timed out`)));
      req.on('error', (err) =>
        reject(
          err instanceof GatewayError
            ? err
            : new GatewayError('ATTACHE_FILE_UPLOAD', `S3 ${operation}: ${err.message}`, { cause: err }),
        ),
      );
      req.end(body);
    });
  }
}

interface RequestOptionsWithBody {
  hostname: string;
  port?: number;
  method: string;
  path: string;
  headers: Record<string, string>;
}
