// Local HTTPS stand-ins for the AWS IoT credentials provider and for S3, speaking the documented
// requests. The provider checks the client certificate (mutual TLS against the test CA), the role
// alias and that `x-amzn-iot-thingname` names the certificate's thing, and issues temporary
// credentials. S3 verifies each request's SigV4 signature in full (canonical request, scope, the
// session token, the payload hash), enforces the role's rule (write only under `<thing>/`, with
// SSE-KMS, read nothing), checks `x-amz-checksum-sha256` against the bytes it received (400
// BadDigest), and assembles multipart uploads with their composite checksum. It can be told to
// damage a request's bytes on arrival or to refuse requests.
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TestPki } from '@attache/devkit';

interface Issued {
  secret: string;
  token: string;
  thing: string;
  expiresAt: number;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The credentials provider: GET /role-aliases/<alias>/credentials over mutual TLS. */
export class CredentialsProviderEmulator {
  /** Credentials issued, by access key id (S3UploadEmulator checks signatures with them). */
  readonly issued = new Map<string, Issued>();
  requests = 0;
  refused = 0;
  /** Lifetime of issued credentials, ms. */
  lifetimeMs = 3_600_000;
  /** Answer the next N requests 200 with this body instead of credentials (a malformed reply). */
  malformedNext = 0;
  malformedBody = '{}';

  private constructor(
    readonly endpoint: string,
    readonly roleAlias: string,
    readonly server: Server,
  ) {}

  static async start(pki: TestPki, roleAlias = 'attache-files-up'): Promise<CredentialsProviderEmulator> {
    const [ca, cert, key] = await Promise.all(
      [pki.caFile, pki.serverCertFile, pki.serverKeyFile].map((f) => readFile(f)),
    );
    let self: CredentialsProviderEmulator | undefined;
    const server = createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: false }, (req, res) =>
      (self as CredentialsProviderEmulator).handle(req, res),
    );
    self = new CredentialsProviderEmulator(await listen(server), roleAlias, server);
    return self;
  }

  /** Answers one request; returns true once answered. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    this.requests++;
    const socket = req.socket as TLSSocket;
    const peer = socket.authorized ? socket.getPeerCertificate() : undefined;
    const thing = String(req.headers['x-amzn-iot-thingname'] ?? '');
    const refuse = (status: number, message: string) => {
      this.refused++;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message }));
      return true;
    };
    if (!peer?.subject) return refuse(403, 'Access Denied');
    if (req.method !== 'GET' || req.url !== `/role-aliases/${this.roleAlias}/credentials`) {
      return refuse(404, 'Role alias does not exist');
    }
    if (thing !== peer.subject.CN) return refuse(403, 'Invalid thing name passed');
    if (this.malformedNext > 0) {
      this.malformedNext--;
      res.writeHead(200, { 'content-type': 'application/json' }).end(this.malformedBody);
      return true;
    }
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const issued: Issued = {
      secret: randomBytes(30).toString('base64'),
      token: randomBytes(60).toString('base64'),
      thing,
      expiresAt: Date.now() + this.lifetimeMs,
    };
    this.issued.set(accessKeyId, issued);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        credentials: {
          accessKeyId,
          secretAccessKey: issued.secret,
          sessionToken: issued.token,
          expiration: new Date(issued.expiresAt).toISOString(),
        },
      }),
    );
    return true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** One request S3UploadEmulator accepted or refused. */
export interface S3Request {
  operation: string;
  key: string;
  partNumber?: number;
  bytes: number;
  status: number;
  code?: string;
}

interface Upload {
  key: string;
  thing: string;
  parts: Map<number, { body: Buffer; etag: string; checksum: string }>;
}

const rfc3986 = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();

/** S3, path-style (`/<bucket>/<key>`): PutObject and the multipart upload requests. */
export class S3UploadEmulator {
  readonly objects = new Map<string, { body: Buffer; checksum: string; metadata: Record<string, string> }>();
  readonly uploads = new Map<string, Upload>();
  readonly log: S3Request[] = [];
  /** Damage the bytes of the next N requests with a body on arrival (one flipped bit). */
  corruptNext = 0;
  /** Refuse the next N requests with this status and code. */
  refuseNext = 0;
  refuseWith = { status: 503, code: 'SlowDown' };
  /** Confirm the next N PutObject/UploadPart requests with another checksum than the one stored (a broken S3). */
  misreportNext = 0;
  /** Never answer the next N requests (a network that went dark mid-request). */
  stallNext = 0;

  private constructor(
    readonly endpoint: string,
    readonly bucket: string,
    readonly region: string,
    readonly server: Server,
    readonly provider: CredentialsProviderEmulator,
  ) {}

  static async start(
    pki: TestPki,
    provider: CredentialsProviderEmulator,
    bucket = 'attache-files',
    region = 'eu-central-1',
  ): Promise<S3UploadEmulator> {
    const [cert, key] = await Promise.all([pki.serverCertFile, pki.serverKeyFile].map((f) => readFile(f)));
    let self: S3UploadEmulator | undefined;
    const server = createServer({ cert, key }, (req, res) => {
      void readBody(req).then((body) => (self as S3UploadEmulator).handle(req, body, res));
    });
    self = new S3UploadEmulator(`https://${await listen(server)}`, bucket, region, server, provider);
    return self;
  }

  /** Answers one request; returns true once answered. */
  handle(req: IncomingMessage, received: Buffer, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'https://s3');
    const query = url.searchParams;
    const key = decodeURIComponent(url.pathname.slice(`/${this.bucket}/`.length));
    const method = req.method ?? '';
    const operation =
      method === 'PUT' && query.has('partNumber')
        ? 'UploadPart'
        : method === 'PUT'
          ? 'PutObject'
          : method === 'POST' && query.has('uploads')
            ? 'CreateMultipartUpload'
            : method === 'POST'
              ? 'CompleteMultipartUpload'
              : method === 'DELETE'
                ? 'AbortMultipartUpload'
                : 'Unsupported';
    const body = Buffer.from(received);
    if (this.corruptNext > 0 && body.length > 0) {
      this.corruptNext--;
      body[body.length >> 1] = (body[body.length >> 1] ?? 0) ^ 0x10;
    }
    const entry: S3Request = { operation, key, bytes: body.length, status: 200 };
    if (query.has('partNumber')) entry.partNumber = Number(query.get('partNumber'));
    this.log.push(entry);
    const reply = (status: number, headers: Record<string, string>, text = '') => {
      entry.status = status;
      res.writeHead(status, headers).end(text);
      return true;
    };
    const error = (status: number, code: string) => {
      entry.code = code;
      return reply(status, { 'content-type': 'application/xml' }, `<Error><Code>${code}</Code></Error>`);
    };
    if (this.stallNext > 0) {
      this.stallNext--;
      return true;
    }
    if (this.refuseNext > 0) {
      this.refuseNext--;
      return error(this.refuseWith.status, this.refuseWith.code);
    }
    // The signature is checked on the bytes as sent; the checksum on the bytes as they arrived, so a
    // damaged body is refused with BadDigest, the checksum's own refusal.
    const thing = this.#authorize(req, url, received);
    if (typeof thing !== 'string') return error(thing.status, thing.code);
    if (!url.pathname.startsWith(`/${this.bucket}/`) || !key.startsWith(`${thing}/`)) {
      return error(403, 'AccessDenied'); // the role writes only under its own thing's prefix
    }
    if (
      (operation === 'PutObject' || operation === 'CreateMultipartUpload') &&
      req.headers['x-amz-server-side-encryption'] !== 'aws:kms'
    ) {
      return error(403, 'AccessDenied'); // the bucket policy denies writes without SSE-KMS
    }
    const checksum = String(req.headers['x-amz-checksum-sha256'] ?? '');
    const actual = sha256(body).toString('base64');
    if ((operation === 'PutObject' || operation === 'UploadPart') && checksum !== actual) {
      return error(400, 'BadDigest');
    }
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    let confirmed = actual;
    if (this.misreportNext > 0 && (operation === 'PutObject' || operation === 'UploadPart')) {
      this.misreportNext--;
      confirmed = sha256(Buffer.from('something else')).toString('base64');
    }
    switch (operation) {
      case 'PutObject':
        this.objects.set(key, { body, checksum: actual, metadata: metadataOf(req) });
        return reply(200, { etag, 'x-amz-checksum-sha256': confirmed });
      case 'CreateMultipartUpload': {
        const uploadId = randomUUID();
        this.uploads.set(uploadId, { key, thing, parts: new Map() });
        this.#pendingMetadata.set(uploadId, metadataOf(req));
        return reply(
          200,
          { 'content-type': 'application/xml' },
          `<InitiateMultipartUploadResult><Bucket>${this.bucket}</Bucket><Key>${key}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
        );
      }
      case 'UploadPart': {
        const upload = this.uploads.get(query.get('uploadId') ?? '');
        if (!upload || upload.key !== key) return error(404, 'NoSuchUpload');
        upload.parts.set(Number(query.get('partNumber')), { body, etag, checksum: actual });
        return reply(200, { etag, 'x-amz-checksum-sha256': confirmed });
      }
      case 'CompleteMultipartUpload':
        return this.#complete(query.get('uploadId') ?? '', key, body.toString('utf8'), reply, error);
      case 'AbortMultipartUpload':
        this.uploads.delete(query.get('uploadId') ?? '');
        return reply(204, {});
      default:
        return error(405, 'MethodNotAllowed');
    }
  }

  readonly #pendingMetadata = new Map<string, Record<string, string>>();

  #complete(
    uploadId: string,
    key: string,
    xml: string,
    reply: (status: number, headers: Record<string, string>, text?: string) => boolean,
    error: (status: number, code: string) => boolean,
  ): boolean {
    const upload = this.uploads.get(uploadId);
    if (!upload || upload.key !== key) return error(404, 'NoSuchUpload');
    const listed = [
      ...xml.matchAll(
        /<Part><PartNumber>(\d+)<\/PartNumber><ETag>([^<]*)<\/ETag><ChecksumSHA256>([^<]*)<\/ChecksumSHA256><\/Part>/g,
      ),
    ];
    if (listed.length === 0) return error(400, 'MalformedXML');
    const bodies: Buffer[] = [];
    const digests: Buffer[] = [];
    let previous = 0;
    for (const [, n, etag, checksum] of listed) {
      const part = upload.parts.get(Number(n));
      if (Number(n) <= previous) return error(400, 'InvalidPartOrder');
      previous = Number(n);
      if (!part || part.etag !== etag?.replace(/&quot;/g, '"') || part.checksum !== checksum) {
        return error(400, 'InvalidPart');
      }
      bodies.push(part.body);
      digests.push(Buffer.from(part.checksum, 'base64'));
    }
    const composite = `${sha256(Buffer.concat(digests)).toString('base64')}-${listed.length}`;
    this.objects.set(key, {
      body: Buffer.concat(bodies),
      checksum: composite,
      metadata: this.#pendingMetadata.get(uploadId) ?? {},
    });
    this.uploads.delete(uploadId);
    return reply(
      200,
      { 'content-type': 'application/xml' },
      `<CompleteMultipartUploadResult><Bucket>${this.bucket}</Bucket><Key>${key}</Key><ChecksumSHA256>${composite}</ChecksumSHA256></CompleteMultipartUploadResult>`,
    );
  }

  /** The thing whose credentials signed the request, or the refusal S3 would send. */
  #authorize(req: IncomingMessage, url: URL, received: Buffer): string | { status: number; code: string } {
    const auth =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
        String(req.headers.authorization ?? ''),
      );
    if (!auth) return { status: 403, code: 'AccessDenied' };
    const [, accessKeyId = '', date = '', region, signedHeaders = '', signature] = auth;
    const issued = this.provider.issued.get(accessKeyId);
    if (!issued) return { status: 403, code: 'InvalidAccessKeyId' };
    if (issued.expiresAt < Date.now()) return { status: 400, code: 'ExpiredToken' };
    if (region !== this.region) return { status: 400, code: 'AuthorizationHeaderMalformed' };
    const signed = signedHeaders.split(';');
    for (const required of ['host', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-security-token']) {
      if (!signed.includes(required)) return { status: 403, code: 'AccessDenied' };
    }
    if (req.headers['x-amz-security-token'] !== issued.token) return { status: 403, code: 'InvalidToken' };
    const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
    if (payloadHash !== sha256(received).toString('hex'))
      return { status: 400, code: 'XAmzContentSHA256Mismatch' };
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const path = url.pathname
      .split('/')
      .map((s) => rfc3986(decodeURIComponent(s)))
      .join('/');
    const query = [...url.searchParams]
      .map(([k, v]) => [rfc3986(k), rfc3986(v)])
      .sort(([a = ''], [b = '']) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const headers = signed
      .map(
        (h) =>
          `${h}:${String(req.headers[h] ?? '')
            .trim()
            .replace(/\s+/g, ' ')}\n`,
      )
      .join('');
    const canonical = [req.method, path, query, headers, signedHeaders, payloadHash].join('\n');
    const scope = `${date}/${region}/s3/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical).toString('hex')].join('\n');
    let signingKey: Buffer = Buffer.from(`AWS4${issued.secret}`);
    for (const part of [date, region ?? '', 's3', 'aws4_request']) {
      signingKey = createHmac('sha256', signingKey).update(part).digest();
    }
    const expected = createHmac('sha256', signingKey).update(toSign).digest('hex');
    if (expected !== signature) return { status: 403, code: 'SignatureDoesNotMatch' };
    return issued.thing;
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    return closed;
  }
}

function metadataOf(req: IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = String(value);
  }
  return metadata;
}
