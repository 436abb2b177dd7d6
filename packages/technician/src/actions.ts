import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@attache/core';
import type { TechnicianHost } from './host.js';
import { BodyError, baseHeaders, readJson, sendError, sendJson } from './http.js';

/** Probe length bounds, s: long enough for every common setting, short enough to watch. */
const minProbeSeconds = 2;
const maxProbeSeconds = 60;
const defaultProbeSeconds = 14;

/** What an action needs: the host, who asks (for the log), the logger. */
export interface ActionContext {
  host: TechnicianHost;
  who: string;
  remote: string | undefined;
  log: Logger;
}

/** The body, or an answer saying why it was refused (then undefined). */
async function body(req: IncomingMessage, res: ServerResponse): Promise<Record<string, unknown> | undefined> {
  try {
    return await readJson(req);
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    sendError(res, err.status, 'ATTACHE_MALFORMED', err.message);
    return undefined;
  }
}

function logAction(ctx: ActionContext, action: string, details: Record<string, unknown> = {}): void {
  ctx.log.info({ who: ctx.who, action, remote: ctx.remote, ...details }, 'technician action');
}

/**
 * The page's actions beyond viewing: serial ports, a live probe, the config (read, check, apply).
 * Resolves false when `route` is none of them.
 */
export async function handleAction(
  route: string,
  req: IncomingMessage,
  res: ServerResponse,
  ctx: ActionContext,
): Promise<boolean> {
  switch (route) {
    case 'GET /api/ports':
      sendJson(res, 200, await ctx.host.ports());
      return true;
    case 'GET /api/doctor':
      sendJson(res, 200, await ctx.host.doctor());
      return true;
    case 'GET /api/config':
      sendJson(res, 200, { config: await ctx.host.config() });
      return true;
    case 'POST /api/probe':
      await probe(req, res, ctx);
      return true;
    case 'POST /api/config/check': {
      const b = await body(req, res);
      if (b) sendJson(res, 200, await ctx.host.checkConfig(b.config));
      return true;
    }
    case 'POST /api/config/apply': {
      const b = await body(req, res);
      if (!b) return true;
      logAction(ctx, 'config.apply');
      const outcome = await ctx.host.applyConfig(b.config);
      ctx.log.info(
        { who: ctx.who, action: 'config.apply', applied: outcome.applied, problems: outcome.issues.length },
        'technician action done',
      );
      sendJson(res, 200, outcome);
      return true;
    }
    case 'POST /api/export': {
      logAction(ctx, 'export');
      res.writeHead(200, { ...baseHeaders, 'content-type': 'application/x-ndjson; charset=utf-8' });
      const result = await ctx.host.exportToStick((progress) =>
        res.write(`${JSON.stringify({ progress })}\n`),
      );
      ctx.log.info(
        { who: ctx.who, action: 'export', records: result.records, written: result.file !== undefined },
        'technician action done',
      );
      res.end(`${JSON.stringify({ result })}\n`);
      return true;
    }
    default:
      return false;
  }
}

/**
 * Listens on a port and streams what is heard as JSON lines: `{"progress": …}` per setting, then
 * `{"result": …}`. Counts only: the bytes heard are never sent to the page.
 */
async function probe(req: IncomingMessage, res: ServerResponse, ctx: ActionContext): Promise<void> {
  const b = await body(req, res);
  if (!b) return;
  if (typeof b.path !== 'string' || !b.path.startsWith('/dev/')) {
    sendError(res, 400, 'ATTACHE_MALFORMED', 'name a serial port under /dev');
    return;
  }
  const asked = typeof b.seconds === 'number' ? b.seconds : defaultProbeSeconds;
  const seconds = Math.min(maxProbeSeconds, Math.max(minProbeSeconds, asked));
  logAction(ctx, 'probe', { port: b.path });
  res.writeHead(200, { ...baseHeaders, 'content-type': 'application/x-ndjson; charset=utf-8' });
  const result = await ctx.host.probe(b.path, seconds, (progress) => {
    res.write(`${JSON.stringify({ progress })}\n`);
  });
  res.end(`${JSON.stringify({ result })}\n`);
}
