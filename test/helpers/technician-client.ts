// A client of the technician page as a browser uses it: a cookie after login, JSON calls, and the
// server-sent event stream read line by line.
import { type IncomingMessage, request } from 'node:http';

export interface PageAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  json: Record<string, unknown>;
}

/** JSON, or for a streamed answer (JSON lines: a probe's progress, then its result) the last line. */
function parseAnswer(res: IncomingMessage, data: string): Record<string, unknown> {
  if (!String(res.headers['content-type']).startsWith('application/x-ndjson'))
    return JSON.parse(data || '{}');
  return JSON.parse(data.trim().split('\n').at(-1) as string);
}

export class TechnicianClient {
  readonly #port: number;
  #cookie: string | undefined;

  constructor(port: number) {
    this.#port = port;
  }

  call(method: string, path: string, body?: unknown): Promise<PageAnswer> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          hostname: '127.0.0.1',
          port: this.#port,
          method,
          path,
          headers: {
            ...(text === undefined ? {} : { 'content-type': 'application/json' }),
            ...(this.#cookie ? { cookie: this.#cookie } : {}),
          },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            data += c;
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, json: parseAnswer(res, data) }),
          );
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  async login(name: string, secret: string): Promise<PageAnswer> {
    const answer = await this.call('POST', '/api/login', { name, secret });
    const cookie = answer.headers['set-cookie']?.[0];
    if (cookie) this.#cookie = cookie.split(';')[0];
    return answer;
  }

  /** Opens the event stream; `next()` resolves with each `reading` event's data in order. */
  events(): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          hostname: '127.0.0.1',
          port: this.#port,
          path: '/api/events',
          headers: this.#cookie ? { cookie: this.#cookie } : {},
        },
        (res) => resolve(new EventStream(res, () => req.destroy())),
      );
      req.on('error', reject);
      req.end();
    });
  }
}

export class EventStream {
  readonly status: number;
  readonly #queue: unknown[] = [];
  readonly #waiters: ((value: unknown) => void)[] = [];
  readonly #close: () => void;

  constructor(res: IncomingMessage, close: () => void) {
    this.status = res.statusCode ?? 0;
    this.#close = close;
    let rest = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      rest += chunk;
      for (let end = rest.indexOf('\n\n'); end >= 0; end = rest.indexOf('\n\n')) {
        const block = rest.slice(0, end);
        rest = rest.slice(end + 2);
        const data = /^event: reading\ndata: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        const value: unknown = JSON.parse(data);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(value);
        else this.#queue.push(value);
      }
    });
  }

  /** The next reading event, rejecting after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift() as Record<string, unknown>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reading event within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((value) => {
        clearTimeout(timer);
        resolve(value as Record<string, unknown>);
      });
    });
  }

  close(): void {
    this.#close();
  }
}
