import { createHash, createHmac } from 'node:crypto';

/** What the ingest handler needs of an object store (S3's semantics, conditional writes included). */
export interface ObjectStore {
  /** The object's bytes and ETag, or undefined when there is none. */
  get(key: string): Promise<{ body: Uint8Array; etag: string } | undefined>;
  /**
   * Writes the object. With `ifMatch` only over that ETag; with `ifNoneMatch: '*'` only when absent.
   * Resolves false when the condition failed (HTTP 412/409), writing nothing.
   */
  put(key: string, body: string, condition?: { ifMatch?: string; ifNoneMatch?: '*' }): Promise<boolean>;
}

export interface S3ObjectStoreOptions {
  bucket: string;
  region: string;
  /** AWS credentials (a Lambda's come from its environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Another endpoint, path-style (`http://127.0.0.1:9000`): an S3-compatible server. Default: the bucket's virtual-hosted endpoint. */
  endpoint?: string;
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
// RFC 3986 encoding of each path segment, as S3's SigV4 canonical URI wants it.
const encodeKey = (key: string) =>
  key
    .split('/')
    .map((s) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');

/**
 * S3 GetObject/PutObject over HTTPS with Signature Version 4 and Node's fetch: no SDK to bundle.
 * Conditional PutObject (`If-Match`, `If-None-Match: *`) makes the dedupe state's commit atomic.
 */
export class S3ObjectStore implements ObjectStore {
  readonly #options: S3ObjectStoreOptions;

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw new TypeError('"bucket" is required');
    if (!options.region) throw new TypeError('"region" is required');
    this.#options = options;
  }

  #url(key: string): URL {
    const { bucket, region, endpoint } = this.#options;
    return endpoint
      ? new URL(`${endpoint.replace(/\/$/, '')}/${bucket}/${encodeKey(key)}`)
      : new URL(`https://${bucket}.s3.${region}.amazonaws.com/${encodeKey(key)}`);
  }

  #sign(
    method: string,
    url: URL,
    payloadHash: string,
    extra: Record<string, string>,
  ): Record<string, string> {
    const { region, credentials } = this.#options;
    const amzDate = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const date = amzDate.slice(0, 8);
    const headers: Record<string, string> = {
      host: url.host,
      'x-amz-content-sha256': payloadHash,
      'x-amz-date': amzDate,
      ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
      ...extra,
    };
    const names = Object.keys(headers).sort();
    const canonical = [
      method,
      url.pathname,
      '',
      ...names.map((n) => `${n}:${String(headers[n]).trim()}`),
      '',
      names.join(';'),
      payloadHash,
    ].join('\n');
    const scope = `${date}/${region}/s3/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    let key = hmac(`AWS4${credentials.secretAccessKey}`, date);
    for (const part of [region, 's3', 'aws4_request']) key = hmac(key, part);
    const signature = createHmac('sha256', key).update(toSign).digest('hex');
    const { host: _host, ...sent } = headers;
    return {
      ...sent,
      authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
    };
  }

  async get(key: string): Promise<{ body: Uint8Array; etag: string } | undefined> {
    const url = this.#url(key);
    const res = await fetch(url, { headers: this.#sign('GET', url, sha256(''), {}) });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`S3 GetObject ${key}: HTTP ${res.status}`);
    return { body: new Uint8Array(await res.arrayBuffer()), etag: res.headers.get('etag') ?? '' };
  }

  async put(
    key: string,
    body: string,
    condition: { ifMatch?: string; ifNoneMatch?: '*' } = {},
  ): Promise<boolean> {
    const url = this.#url(key);
    const extra: Record<string, string> = { 'content-type': 'application/json' };
    if (condition.ifMatch) extra['if-match'] = condition.ifMatch;
    if (condition.ifNoneMatch) extra['if-none-match'] = condition.ifNoneMatch;
    const res = await fetch(url, {
      method: 'PUT',
      body,
      headers: this.#sign('PUT', url, sha256(body), extra),
    });
    if (res.status === 412 || res.status === 409) return false;
    if (!res.ok) throw new Error(`S3 PutObject ${key}: HTTP ${res.status}`);
    return true;
  }
}
