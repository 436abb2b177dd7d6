import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Clock, isGatewayError, type Logger, systemClock } from '@attache/core';
import { handleAction } from './actions.js';
import type { LiveReading, TechnicianHost } from './host.js';
import { BodyError, baseHeaders, cookie, readJson, sendError, sendJson } from './http.js';
import { type BindAddress, hostHeader, resolveListen } from './listen.js';
import { LiveFeed } from './live-feed.js';
import { loadOrCreateSecret, readSecret, secretDigest, secretMatches } from './secret.js';
import { LoginLimiter, type Session, SessionStore } from './sessions.js';

const cookieName = 'attache_tech';
/** How often interfaces named in `listen` are checked for new addresses (the USB cable plugged in), ms. */
const rebindEveryMs = 5_000;

/** Options of {@link TechnicianServer}. */
export interface TechnicianServerOptions {
  /** Interface names and addresses to listen on (the config's `technician.listen`). */
  listen: readonly string[];
  /** TCP port. */
  port: number;
  /** How long a login lasts, minutes. */
  sessionMinutes: number;
  /** The technician secret's file (created 0600 when missing). */
  secretPath: string;
  host: TechnicianHost;
  logger: Logger;
  /** Default: the system clock. */
  clock?: Clock;
  /** The page's files; default: the package's `assets` directory. */
  assetsDir?: string;
}

const assets: Record<string, string> = {
  '/': 'text/html; charset=utf-8',
  '/app.js': 'text/javascript; charset=utf-8',
  '/app.css': 'text/css; charset=utf-8',
};
const assetFile: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css' };

/**
 * The technician page's HTTP server: serves the page and its JSON API on the addresses `listen`
 * names only, to a technician who logged in with the box's secret. Every action is logged with who
 * did it; readings are never logged.
 */
export class TechnicianServer {
  #options: TechnicianServerOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #sessions: SessionStore;
  readonly #limiter: LoginLimiter;
  /** Listening servers by address, with the Host header each answers to. */
  readonly #servers = new Map<string, { server: Server; host: string }>();
  readonly #hosts = new Set<string>();
  readonly #files = new Map<string, Buffer>();
  #feed: LiveFeed | undefined;
  #rebind: NodeJS.Timeout | undefined;

  constructor(options: TechnicianServerOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#sessions = new SessionStore({ clock: this.#clock, lifetimeMs: options.sessionMinutes * 60_000 });
    this.#limiter = new LoginLimiter(this.#clock);
  }

  /** Creates the secret if needed, loads the page and listens on every address there is now. */
  async start(): Promise<void> {
    await loadOrCreateSecret(this.#options.secretPath);
    const dir = this.#options.assetsDir ?? fileURLToPath(new URL('../assets/', import.meta.url));
    for (const [path, file] of Object.entries(assetFile)) {
      this.#files.set(path, await readFile(`${dir}/${file}`));
    }
    this.#feed = new LiveFeed(this.#options.host, this.#clock);
    await this.#bindAll();
    this.#rebind = setInterval(() => void this.#bindAll(), rebindEveryMs);
    this.#rebind.unref();
  }

  /** The `http://host:port` addresses the page is reachable at now. */
  get urls(): string[] {
    return [...this.#hosts].map((host) => `http://${host}/`);
  }

  /** Stops listening and closes every connection, a live feed's included. */
  async stop(): Promise<void> {
    clearInterval(this.#rebind);
    this.#feed?.close();
    this.#feed = undefined;
    const servers = [...this.#servers.values()];
    this.#servers.clear();
    this.#hosts.clear();
    await Promise.all(servers.map(({ server }) => closeServer(server)));
  }

  /**
   * Takes up a changed `technician` section while running (a config reload): stops listening where
   * `listen` or the port no longer says (connections there are closed), listens where it now does,
   * and gives sessions started from now on the new length. Logged-in technicians stay logged in.
   */
  async reconfigure(
    options: Pick<TechnicianServerOptions, 'listen' | 'port' | 'sessionMinutes'>,
  ): Promise<void> {
    const moved = options.port !== this.#options.port;
    this.#options = { ...this.#options, ...options };
    this.#sessions.lifetimeMs = options.sessionMinutes * 60_000;
    const wanted = new Set(resolveListen(options.listen).map((a) => a.address));
    const dropped: Server[] = [];
    for (const [address, { server, host }] of this.#servers) {
      if (!moved && wanted.has(address)) continue;
      this.#servers.delete(address);
      this.#hosts.delete(host);
      dropped.push(server);
      this.#log.info({ url: `http://${host}/` }, 'technician page no longer listening there');
    }
    await Promise.all(dropped.map(closeServer));
    await this.#bindAll();
  }

  async #bindAll(): Promise<void> {
    for (const address of resolveListen(this.#options.listen)) {
      if (this.#servers.has(address.address)) continue;
      await this.#bind(address).catch((err: unknown) =>
        this.#log.warn({ err, address: address.address }, 'the technician page cannot listen there'),
      );
    }
  }

  async #bind(address: BindAddress): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#log.error({ err }, 'technician page request failed');
        if (!res.headersSent) sendError(res, 500, 'ATTACHE_INTERNAL', 'the request failed');
        else res.end();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(
        { host: address.address, port: this.#options.port, ipv6Only: address.family === 6 },
        () => {
          server.off('error', reject);
          resolve();
        },
      );
    });
    server.on('error', (err) => this.#log.error({ err }, 'technician page server error'));
    const host = hostHeader(address, this.#options.port);
    this.#servers.set(address.address, { server, host });
    this.#hosts.add(host);
    this.#log.info({ url: `http://${host}/` }, 'technician page listening');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A Host this box does not answer to is a DNS-rebinding page in some browser: refused.
    if (!this.#hosts.has(req.headers.host ?? '')) {
      sendError(res, 421, 'ATTACHE_MALFORMED', 'this page answers only at its own address');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path in assets) {
      const body = this.#files.get(path) as Buffer;
      res.writeHead(200, {
        ...baseHeaders,
        'content-type': assets[path] as string,
        'content-length': body.length,
      });
      res.end(body);
      return;
    }
    if (!path.startsWith('/api/')) {
      sendError(res, 404, 'ATTACHE_MALFORMED', 'no such page');
      return;
    }
    if (method === 'POST' && !this.#sameOrigin(req)) {
      sendError(res, 403, 'ATTACHE_MALFORMED', 'cross-site request refused');
      return;
    }
    if (method === 'POST' && path === '/api/login') return this.#login(req, res);
    const secret = await readSecret(this.#options.secretPath);
    const token = cookie(req, cookieName);
    const session = secret === undefined ? undefined : this.#sessions.get(token, secretDigest(secret));
    if (!session) {
      sendError(res, 401, 'ATTACHE_UNAUTHORIZED', 'log in with the box secret');
      return;
    }
    await this.#route(method, path, req, res, session, token as string);
  }

  /** A POST from another origin (a page on the hospital network) is refused; browsers always send Origin on POST. */
  #sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return origin === undefined || origin === `http://${req.headers.host}`;
  }

  async #route(
    method: string,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
    session: Session,
    token: string,
  ): Promise<void> {
    const route = `${method} ${path}`;
    switch (route) {
      case 'GET /api/session':
        return sendJson(res, 200, { who: session.who, expiresAt: new Date(session.expiresAt).toISOString() });
      case 'GET /api/status':
        return sendJson(res, 200, await this.#status());
      case 'GET /api/events':
        (this.#feed as LiveFeed).add(
          res,
          () => this.#sessions.get(token, session.secretDigest) !== undefined,
        );
        return;
      case 'POST /api/logout':
        this.#sessions.delete(token);
        this.#action(session, 'logout', req);
        return sendJson(
          res,
          200,
          {},
          { 'set-cookie': `${cookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` },
        );
      case 'POST /api/window': {
        this.#action(session, 'window.open', req);
        const result = await this.#options.host.openWindow().catch((err: unknown) => {
          const code = isGatewayError(err) ? err.code : 'ATTACHE_INTERNAL';
          return { outcome: 'failed' as const, error: { code, message: (err as Error).message } };
        });
        this.#log.info(
          { who: session.who, action: 'window.open', outcome: result.outcome },
          'technician action done',
        );
        return sendJson(res, 200, result);
      }
      default: {
        const ctx = {
          host: this.#options.host,
          who: session.who,
          remote: req.socket.remoteAddress,
          log: this.#log,
        };
        if (!(await handleAction(route, req, res, ctx))) {
          sendError(res, 404, 'ATTACHE_MALFORMED', `no such call: ${route}`);
        }
      }
    }
  }

  async #status(): Promise<object> {
    const status = await this.#options.host.status();
    const feed = this.#feed as LiveFeed;
    return {
      ...status,
      adapters: status.adapters.map((a) => ({ ...a, lastReadingAt: feed.lastReadingAt(a.deviceId) ?? null })),
    };
  }

  async #login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const wait = this.#limiter.waitMs();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      this.#log.warn(
        { remote: req.socket.remoteAddress, action: 'login', outcome: 'throttled' },
        'technician login refused',
      );
      return sendError(
        res,
        429,
        'ATTACHE_UNAUTHORIZED',
        `too many failed logins: try again in ${seconds} s`,
        {
          'retry-after': String(seconds),
        },
      );
    }
    let body: Record<string, unknown>;
    try {
      body = await readJson(req);
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      return sendError(res, err.status, 'ATTACHE_MALFORMED', err.message);
    }
    const who =
      typeof body.name === 'string'
        ? body.name
            .replace(/[^\p{L}\p{N} .,'()-]/gu, '')
            .trim()
            .slice(0, 64)
        : '';
    const typed = typeof body.secret === 'string' ? body.secret.slice(0, 64) : '';
    const secret = await readSecret(this.#options.secretPath);
    if (who === '' || secret === undefined || !secretMatches(typed, secret)) {
      this.#limiter.failed();
      this.#log.warn(
        { remote: req.socket.remoteAddress, action: 'login', outcome: 'refused' },
        'technician login refused',
      );
      return sendError(res, 401, 'ATTACHE_UNAUTHORIZED', who === '' ? 'type your name' : 'wrong secret');
    }
    this.#limiter.succeeded();
    const token = this.#sessions.create(who, secretDigest(secret));
    this.#action({ who }, 'login', req);
    sendJson(
      res,
      200,
      { who },
      {
        'set-cookie': `${cookieName}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${this.#sessions.maxAgeSeconds}`,
      },
    );
  }

  /** Logs who did what, from where (the log line's time is when): never any reading or patient data. */
  #action(session: Pick<Session, 'who'>, action: string, req: IncomingMessage): void {
    this.#log.info({ who: session.who, action, remote: req.socket.remoteAddress }, 'technician action');
  }
}

export type { LiveReading };

/** Closes a server and every connection it has (a live feed's stream would hold it open). */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
