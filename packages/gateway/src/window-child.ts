// One connectivity window in its own short-lived process (window-worker.ts): started, served over
// IPC (the outbox and the host), killed past its deadline, and its result counted from what the
// gateway saw removed when the process ends without reporting.
import { fork } from 'node:child_process';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { LevelCache } from '@attache/cache';
import type { AttacheConfig, Logger, Outbox, PageOptions, UplinkConfig } from '@attache/core';
import type { WindowReport } from '@attache/uplink/policy';
import { isAllowed, replyTo, serveCall } from './ipc-proxy.js';
import { PageFrameWriter } from './page-pipe.js';
import { provisioningDir } from './paths.js';
import {
  type FromWindow,
  type ToWindow,
  type UpdateTargets,
  type WindowChild,
  type WindowHostServer,
  type WindowParent,
  windowParentMethods,
} from './window-protocol.js';
import type { WindowRunRequest } from './window-runner.js';

/** What the broker acknowledged during a window, as the gateway counts it from the removes. */
type Acked = Pick<WindowReport, 'records' | 'messages' | 'bytes' | 'firstSeq' | 'lastSeq'>;
const workerPath = fileURLToPath(new URL('./window-worker.js', import.meta.url));
/** Past the window's own deadline, how long a window process may take before it is killed. */
const killGraceMs = 30_000;

/**
 * Forks the window process; its log goes to `logFd`. Messages pass as structured clones (V8's
 * serializer): a record's JSON crosses as its bytes, where the default JSON channel would escape
 * every quote in it on the way out and parse it again on the way in. Pages of records take a pipe of
 * their own, the child's fd 4 (page-pipe.ts).
 */
export function forkWindow(logFd: 1 | 2): WindowChild {
  const child = fork(workerPath, {
    stdio: ['ignore', logFd === 2 ? 2 : 'inherit', 'inherit', 'ipc', 'pipe'],
    serialization: 'advanced',
  });
  const pagePipe = child.stdio[4] as Writable | null;
  // The window process never writes to it; should it, nothing here reads what it wrote.
  pagePipe?.on('error', () => {});
  return Object.assign(child, { pagePipe: pagePipe ?? undefined });
}

/** What a window in a child process needs of its runner. */
export interface WindowChildOptions {
  config: AttacheConfig;
  uplink: UplinkConfig;
  request: WindowRunRequest;
  cache: LevelCache;
  log: Logger;
  host: WindowHostServer | undefined;
  updates: UpdateTargets | undefined;
  spawnWindow: () => WindowChild;
  /** Given the function that ends the window early (the runner's `close()` calls it). */
  onAbort: (abort: () => void) => void;
  /** Whether the gateway is stopping (then a window ended by SIGINT/SIGTERM was interrupted). */
  closing: () => boolean;
}

/** Runs the window in a child process, serving its outbox and host requests. */
export function runWindowChild(o: WindowChildOptions): Promise<WindowReport> {
  const { uplink, request } = o;
  const openedAt = new Date().toISOString();
  const acked: Acked = { records: 0, messages: 0, bytes: 0, firstSeq: null, lastSeq: null };
  const served: Served = new Map();
  const child = o.spawnWindow();
  // While the window process starts (its modules, the TLS connection: the gateway waits), the cache
  // merges its newest tables, which a long drain would otherwise do in its middle (LevelCache.beforeDrain).
  void o.cache.beforeDrain();
  // The window process may die at any moment: a send into its closed channel is expected then
  // (EPIPE), and must never become an uncaught 'error' that stops the gateway.
  child.on('error', (err) => o.log.warn({ err }, 'window process channel error'));
  const send = (message: ToWindow) => {
    if (child.connected) child.send(message, (err) => err && o.log.debug({ err }, 'window process gone'));
  };
  o.onAbort(() => send({ type: 'abort' }));
  const maxDurationMs = request.maxDurationMs ?? uplink.window.maxDurationSeconds * 1000;
  const limitMs = maxDurationMs + uplink.connectTimeoutMs + killGraceMs;
  let overran = false;
  const killer = setTimeout(() => {
    overran = true;
    o.log.error({ pid: child.pid, limitMs }, 'window process overran its deadline: killed');
    child.kill('SIGKILL');
  }, limitMs);

  const outbox = pipedOutbox(servedOutbox(o.cache, served, acked), child.pagePipe);
  // Without a running gateway (an offline `attache sync`) the window is told so (`host: false`)
  // and asks for the outbox only: a host method is then refused like any unknown one.
  const targets: Partial<WindowParent>[] = o.host ? [outbox, o.host] : [outbox];
  return new Promise<WindowReport>((resolve) => {
    let result: WindowReport | undefined;
    const pending = new Set<Promise<unknown>>();
    child.on('message', (message: FromWindow) => {
      if (message.type === 'result') {
        // What the gateway saw acknowledged (removes) is never less than what the window reports.
        result = { ...message.result, ...(message.result.records < acked.records ? acked : {}) };
        return;
      }
      if (!isAllowed(windowParentMethods, message.method))
        o.log.warn({ method: String(message.method).slice(0, 64) }, 'window process call refused');
      const serving = replyTo(message.id, serveCall(windowParentMethods, message, ...targets));
      pending.add(serving);
      void serving.then((reply) => {
        pending.delete(serving);
        send(reply);
      });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      // Removes still being served are counted before the window is: they left the cache.
      void Promise.allSettled([...pending]).then(() => ended(code, signal));
    });
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      if (result) return resolve(result);
      // The window process ended without reporting (killed, a crash in native code): what it had
      // acknowledged is counted here.
      const counted = { openedAt, closedAt: new Date().toISOString(), events: 0, ...acked };
      if (o.closing() && !overran && (signal === 'SIGINT' || signal === 'SIGTERM')) {
        o.log.info({ signal }, 'window interrupted: the gateway is stopping');
        return resolve({ ...counted, outcome: 'deadline', endedBy: 'interrupted' });
      }
      const error = overran
        ? {
            code: 'ATTACHE_TIMEOUT',
            message: `window process overran its deadline (${limitMs} ms): killed`,
          }
        : {
            code: 'ATTACHE_INTERNAL',
            message: `window process ended (${signal ?? `exit ${code}`}) before reporting`,
          };
      o.log.error({ code, signal, errorCode: error.code }, error.message);
      resolve({ ...counted, outcome: 'failed', endedBy: 'failed', error });
    };
    send({
      type: 'start',
      gatewayId: o.config.gateway.id,
      uplink,
      logLevel: o.config.log.level,
      maxDurationMs,
      linger: request.linger ?? false,
      host: o.host !== undefined,
      pagePipe: child.pagePipe !== undefined,
      ...(uplink.provisioning ? { provisioningDir: provisioningDir(o.config) } : {}),
      ...(o.config.jobs === undefined
        ? {}
        : {
            jobs: {
              config: o.config.jobs,
              dataDir: o.config.gateway.dataDir,
              ...(o.updates && o.host ? { updates: o.updates } : {}),
            },
          }),
    } satisfies ToWindow);
  }).finally(() => drop(child));
}

/** What the window process was handed, by first seq: the last seq, how many records, their bytes of JSON. */
type Served = Map<number, { lastSeq: number; count: number; bytes: number }>;

/** The cache as the window process sees it: what it reads is noted, what it removes counted. */
function servedOutbox(cache: LevelCache, served: Served, acked: Acked): Required<Outbox> {
  return {
    read: async (options) => {
      const records = await cache.read(options);
      for (const r of records) served.set(r.seq, { lastSeq: r.seq, count: 1, bytes: r.json.length });
      return records;
    },
    readPage: async (options) => {
      const page = await cache.readPage(options);
      if (page) {
        const { firstSeq, lastSeq, count, json } = page;
        const room = (options.room?.before ?? 0) + (options.room?.after ?? 0);
        served.set(firstSeq, { lastSeq, count, bytes: json.length - room - (count - 1) });
      }
      return page;
    },
    remove: async (firstSeq, lastSeq) => {
      await cache.remove(firstSeq, lastSeq);
      countRemoved(firstSeq, lastSeq, served, acked);
    },
  };
}

/**
 * The outbox served to a window process with a page pipe: each page's bytes go on the pipe as a
 * frame, and the reply carries its seqs and the frame's number (a {@link PipedPage}) instead of the
 * page, so it is not copied into an IPC message. Without a pipe, the page in the reply.
 */
function pipedOutbox(outbox: Required<Outbox>, pipe: Writable | undefined): Partial<WindowParent> {
  if (pipe === undefined) {
    // The page itself in the reply, without its release (a function is not cloned): its buffer is
    // not reused.
    const readPage = async (options: PageOptions) => {
      const page = await outbox.readPage(options);
      return page && { firstSeq: page.firstSeq, lastSeq: page.lastSeq, count: page.count, json: page.json };
    };
    return { ...outbox, readPage };
  }
  const frames = new PageFrameWriter(pipe);
  const readPage = async (options: PageOptions) => {
    const page = await outbox.readPage(options);
    return page && frames.write(page);
  };
  // The reply's value crosses the IPC as it is: the window process reads it as a PipedPage.
  return { ...outbox, readPage } as unknown as Partial<WindowParent>;
}

function countRemoved(firstSeq: number, lastSeq: number, served: Served, acked: Acked): void {
  acked.messages++;
  for (const [first, part] of served) {
    if (first < firstSeq || part.lastSeq > lastSeq) continue;
    served.delete(first);
    acked.records += part.count;
    acked.bytes += part.bytes;
    acked.firstSeq = Math.min(acked.firstSeq ?? first, first);
    acked.lastSeq = Math.max(acked.lastSeq ?? part.lastSeq, part.lastSeq);
  }
}

function drop(child: WindowChild): void {
  child.removeAllListeners('message');
  child.removeAllListeners('exit');
  if (child.connected) child.disconnect();
}
