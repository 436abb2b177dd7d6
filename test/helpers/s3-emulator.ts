// A small S3 server for tests: path-style GetObject and PutObject (`/<bucket>/<key>`) with ETags and
// the conditional writes S3 documents (If-Match, If-None-Match: * → 412 Precondition Failed), and
// ListObjectsV2-like access for assertions. It checks that each request is SigV4-signed for its
// access key and that x-amz-content-sha256 is the body's hash, as S3 does; it does not recompute
// the signature.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class S3Emulator {
  readonly objects = new Map<string, { body: Buffer; etag: string }>();
  /** Requests refused for their signature (403). */
  refused = 0;
  /** Fail the next N PutObject requests with 500 (a transient S3 error). */
  failPuts = 0;
  readonly #server: Server;
  readonly endpoint: string;

  private constructor(
    server: Server,
    endpoint: string,
    readonly bucket: string,
    readonly accessKeyId: string,
  ) {
    this.#server = server;
    this.endpoint = endpoint;
  }

  static async start(bucket = 'ingest', accessKeyId = 'AKIDTEST'): Promise<S3Emulator> {
    let self: S3Emulator | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        (self as S3Emulator).handle(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks), res),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new S3Emulator(server, `http://127.0.0.1:${port}`, bucket, accessKeyId);
    return self;
  }

  handle(
    method: string,
    url: string,
    headers: Record<string, string | string[] | undefined>,
    body: Buffer,
    res: import('node:http').ServerResponse,
  ): void {
    const auth = String(headers.authorization ?? '');
    const hash = createHash('sha256').update(body).digest('hex');
    if (
      !auth.startsWith(`AWS4-HMAC-SHA256 Credential=${this.accessKeyId}/`) ||
      headers['x-amz-content-sha256'] !== hash
    ) {
      this.refused++;
      res.writeHead(403).end('<Error><Code>SignatureDoesNotMatch</Code></Error>');
      return;
    }
    const prefix = `/${this.bucket}/`;
    if (!url.startsWith(prefix)) {
      res.writeHead(404).end('<Error><Code>NoSuchBucket</Code></Error>');
      return;
    }
    const key = decodeURIComponent(url.slice(prefix.length));
    const current = this.objects.get(key);
    if (method === 'GET') {
      if (!current) res.writeHead(404).end('<Error><Code>NoSuchKey</Code></Error>');
      else res.writeHead(200, { etag: current.etag }).end(current.body);
      return;
    }
    if (method === 'PUT') {
      if (this.failPuts > 0) {
        this.failPuts--;
        res.writeHead(500).end('<Error><Code>InternalError</Code></Error>');
        return;
      }
      const ifMatch = headers['if-match'];
      const ifNoneMatch = headers['if-none-match'];
      if ((ifNoneMatch === '*' && current) || (ifMatch !== undefined && current?.etag !== ifMatch)) {
        res.writeHead(412).end('<Error><Code>PreconditionFailed</Code></Error>');
        return;
      }
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      this.objects.set(key, { body, etag });
      res.writeHead(200, { etag }).end();
      return;
    }
    res.writeHead(405).end();
  }

  /** Keys under `prefix`, sorted. */
  keys(prefix: string): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  json(key: string): Record<string, unknown> {
    return JSON.parse((this.objects.get(key)?.body ?? Buffer.from('null')).toString('utf8'));
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
