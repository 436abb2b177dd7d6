// The window runner with its window run in-process (no fork): a real cache on disk, the real
// window (AWS IoT SDK) against Debian's mosquitto with mutual TLS, over the same messages the forked
// window process exchanges with the gateway.
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AttacheRecord,
  nullLogger,
  type RecordDraft,
  type RecordPage,
  validateConfig,
} from '@attache/core';
import {
  createTestPki,
  type LogEntry,
  recordingLogger,
  startMosquitto,
  subscribeTopic,
  uplinkSettings,
} from '@attache/devkit';
import t, { type Test } from 'tap';
import { openCache, WindowRunner } from '../src/index.js';
import type { ReplyMessage } from '../src/ipc-proxy.js';
import { WindowProcess } from '../src/window-process.js';
import type { FromWindow, ToWindow, WindowChild } from '../src/window-protocol.js';

const gatewayId = 'gw-inproc';

// After the window the AWS SDK's native client may hold the event loop open until garbage
// collection: end the file once tap has every result (a failure still sets the exit code first).
t.teardown(() => {});
t.on('complete', () => setImmediate(() => process.exit()));

/** A window process run in this process: messages pass as structured clones, one tick apart, as over IPC. */
class InProcessWindow extends EventEmitter implements WindowChild {
  connected = true;
  #exited = false;
  readonly #window = new WindowProcess({
    send: (message, sent) =>
      setImmediate(() => {
        if (this.connected) this.emit('message', structuredClone(message));
        sent?.();
      }),
    exit: (code) => this.#exit(code, null),
    logger: () => nullLogger,
  });

  send(message: ToWindow, callback: (err: Error | null) => void): void {
    setImmediate(() => {
      this.#window.receive(structuredClone(message));
      callback(null);
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.#window.abort();
    this.#exit(null, signal);
  }

  disconnect(): void {
    this.connected = false;
  }

  #exit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#exited) return;
    this.#exited = true;
    setImmediate(() => this.emit('exit', code, signal));
  }
}

function draft(n: number): RecordDraft {
  return {
    gatewayId,
    deviceId: 'spo2-bed7',
    adapter: 'rs232',
    protocol: 'kv-line',
    capturedAt: new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString(),
    clock: { synchronized: true, bootId: '2b1c6e9a-4d1f-4a51-9b0e-6f3a7c2d8e10', monotonicMs: n },
    observations: [
      { code: 'MDC_PULS_OXIM_SAT_O2', system: 'MDC', value: 90 + n, unit: '%', status: 'valid' },
    ],
  };
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attache-win-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a window run in-process uploads the backlog and empties the cache', async (t) => {
  const dir = await tempDir(t);
  const pki = await createTestPki(join(dir, 'pki'), { thingName: gatewayId });
  const broker = await startMosquitto({ dir: join(dir, 'broker'), pki });
  t.teardown(() => broker.stop());
  const topic = `dt/attache/${gatewayId}/telemetry`;
  const received = await subscribeTopic({ broker, pki, topic });
  t.teardown(() => received.stop());
  const config = validateConfig({
    version: 1,
    gateway: { id: gatewayId, dataDir: join(dir, 'data') },
    devices: [{ id: 'spo2-bed7', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } }],
    uplink: { ...uplinkSettings(broker, pki), trustedTime: { enabled: false } },
  });
  const cache = await openCache(config, nullLogger);
  t.teardown(() => cache.close());
  for (let n = 1; n <= 3; n++) await cache.append(draft(n));
  const runner = new WindowRunner({
    config,
    cache,
    logger: nullLogger,
    spawnWindow: () => new InProcessWindow(),
  });
  const window = await runner.run();
  t.match(window, { outcome: 'drained', records: 3, firstSeq: 1, lastSeq: 3, trigger: 'manual' });
  t.equal((await cache.stats()).records, 0, 'the acknowledged records left the cache');
  const batches = await received.waitFor(1, 30_000);
  const records = batches.flatMap((b) => (JSON.parse(b.toString()) as { records: AttacheRecord[] }).records);
  t.same(
    records.map((r) => r.seq),
    [1, 2, 3],
    'the broker got every record',
  );
});

t.test('a call the window process may not make is refused and logged; nothing is called', async (t) => {
  const dir = await tempDir(t);
  const config = validateConfig({
    version: 1,
    gateway: { id: gatewayId, dataDir: join(dir, 'data') },
    devices: [{ id: 'spo2-bed7', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } }],
    uplink: { endpoint: '127.0.0.1', certFile: 'c', keyFile: 'k' },
  });
  const cache = await openCache(config, nullLogger);
  t.teardown(() => cache.close());
  await cache.append(draft(1));
  // A window process gone wrong: it asks the gateway to close its cache, then reports.
  const replies: ToWindow[] = [];
  const rogue = new (class extends EventEmitter implements WindowChild {
    connected = true;
    send(message: ToWindow, callback: (err: Error | null) => void): void {
      callback(null);
      if (message.type === 'start') {
        setImmediate(() =>
          this.emit('message', { type: 'call', id: 1, method: 'close', args: [] } satisfies FromWindow),
        );
        return;
      }
      replies.push(message);
      const result = {
        openedAt: '',
        closedAt: '',
        outcome: 'failed',
        endedBy: 'failed',
        records: 0,
        messages: 0,
        bytes: 0,
        firstSeq: null,
        lastSeq: null,
        events: 0,
      } as const;
      setImmediate(() => {
        this.emit('message', { type: 'result', result } satisfies FromWindow);
        this.emit('exit', 0, null);
      });
    }
    kill(): void {}
    disconnect(): void {
      this.connected = false;
    }
  })();
  const entries: LogEntry[] = [];
  const runner = new WindowRunner({
    config,
    cache,
    logger: recordingLogger(entries),
    spawnWindow: () => rogue,
  });
  await runner.run();
  t.match(replies, [
    { type: 'reply', id: 1, error: { code: 'ATTACHE_INTERNAL', message: /not a method served here/ } },
  ]);
  t.ok(
    entries.some((e) => e.msg === 'window process call refused' && e.method === 'close'),
    'the refusal is logged with the method',
  );
  t.equal((await cache.stats()).records, 1, 'the cache is still open and holds its record');
});

t.test('a window process that dies after a PUBACK: the gateway counts the page it removed', async (t) => {
  const dir = await tempDir(t);
  const config = validateConfig({
    version: 1,
    gateway: { id: gatewayId, dataDir: join(dir, 'data') },
    devices: [{ id: 'spo2-bed7', adapter: 'rs232', port: { path: '/dev/ttyS0' }, format: { kind: 'astm' } }],
    uplink: { endpoint: '127.0.0.1', certFile: 'c', keyFile: 'k' },
  });
  const cache = await openCache(config, nullLogger);
  t.teardown(() => cache.close());
  for (let n = 1; n <= 5; n++) await cache.append(draft(n));
  // The window process's side of the protocol, scripted: two pages read, the first removed (its
  // PUBACK came), then the process is killed before it reports.
  const dying = new (class extends EventEmitter implements WindowChild {
    connected = true;
    #id = 0;
    readonly #replies = new Map<number, (reply: ReplyMessage) => void>();
    send(message: ToWindow, callback: (err: Error | null) => void): void {
      callback(null);
      if (message.type === 'start') setImmediate(() => void this.#script());
      if (message.type === 'reply') this.#replies.get(message.id)?.(structuredClone(message));
    }
    #call(method: string, args: unknown[]): Promise<ReplyMessage> {
      const id = ++this.#id;
      return new Promise((resolve) => {
        this.#replies.set(id, resolve);
        this.emit('message', { type: 'call', id, method, args } satisfies FromWindow);
      });
    }
    async #script(): Promise<void> {
      // With room around the JSON, as the window asks: the bytes counted are the records' alone.
      const room = { before: 100, after: 2 };
      const first = (await this.#call('readPage', [{ afterSeq: 0, limit: 2, maxBytes: 1e6, room }]))
        .value as RecordPage;
      await this.#call('readPage', [{ afterSeq: first.lastSeq, limit: 2, maxBytes: 1e6 }]);
      await this.#call('remove', [first.firstSeq, first.lastSeq]);
      this.emit('exit', null, 'SIGKILL');
    }
    kill(): void {}
    disconnect(): void {
      this.connected = false;
    }
  })();
  const [one, two] = await cache.read({ afterSeq: 0, limit: 2, maxBytes: 1e6 });
  const runner = new WindowRunner({ config, cache, logger: nullLogger, spawnWindow: () => dying });
  const window = await runner.run();
  t.match(window, {
    outcome: 'failed',
    records: 2,
    messages: 1,
    firstSeq: 1,
    lastSeq: 2,
    bytes: Buffer.byteLength(one?.json ?? '') + Buffer.byteLength(two?.json ?? ''),
  });
  t.match(window.error, { code: 'ATTACHE_INTERNAL', message: /SIGKILL/ });
  t.equal((await cache.stats()).records, 3, 'the second page, never acknowledged, stays');
});
